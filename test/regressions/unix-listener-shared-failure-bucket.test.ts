/**
 * Found by the outside attack review (issue 13, finding 6): on a unix-socket listener every client had
 * the address "unix", so they all shared one bucket of failed token attempts: 10 bad tokens from anyone
 * locked everyone out. And `--trust-proxy` took only IP addresses, so the README's nginx → unix socket
 * setup could not be told to read the real client. `--trust-proxy unix` (or `loopback`) now trusts the
 * peers of a unix-socket listener, as nginx's `set_real_ip_from unix:` does.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { join } from 'node:path'
import WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { firstWsThrough, startNginx, type Nginx } from '../helpers/nginx.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const GOOD = 'good-token-Ux44'

/** A client from `from` (a loopback address) through nginx: its close code, or 'echoed'. */
async function attempt(nginx: Nginx, from: string, token: string): Promise<number | 'echoed'> {
  const ws = new WebSocket(nginx.url(), {
    ca: nginx.ca,
    localAddress: from,
    headers: { Authorization: `Bearer ${token}` },
  })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  // A refusal completes the upgrade and closes at once; an admitted tunnel echoes.
  ws.once('open', () => ws.send('ping'))
  return Promise.race([
    once(ws, 'message').then(() => 'echoed' as const),
    once(ws, 'close').then(([code]) => code as number),
  ])
}

describe('regression: clients of a unix-socket listener behind nginx', () => {
  it.each(['unix', 'loopback'])(
    '--trust-proxy %s: one client guessing tokens is limited alone, under its own address',
    async (trustProxy) => {
      const echo = await startEchoServer()
      d.add(() => echo.close())
      const dir = await tempDir(d, 'gangway-unix-')
      const path = join(dir, 'gangway.sock')
      const logger = memoryLogger()
      const routes = parseRoutes(
        { echo: { target: `127.0.0.1:${echo.port}`, tokens: [GOOD] } },
        'routes',
      )
      await startAccessTunnel(
        d,
        { routes, listen: { kind: 'unix', path }, trustProxy, maxAuthFailures: 3 },
        logger,
      )
      const nginx = await startNginx(d, [path])
      await firstWsThrough(d, nginx, `?token=${GOOD}`)

      const attacker: Array<number | 'echoed'> = []
      for (let n = 0; n < 5; n++) attacker.push(await attempt(nginx, '127.0.0.2', `wrong-${n}`))
      expect(attacker).toEqual([4401, 4401, 4401, 4429, 4429])
      // The victim, on another address, is not locked out.
      expect(await attempt(nginx, '127.0.0.3', GOOD)).toBe('echoed')
      const refused = logger.lines.filter((l) => l.msg === 'tunnel refused')
      expect(new Set(refused.map((l) => l.fields['client']))).toEqual(new Set(['127.0.0.2']))
    },
  )
})
