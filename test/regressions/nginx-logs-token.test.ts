/**
 * Found by the outside attack review (issue 13, finding 13): with the deploy kit's nginx snippet and
 * nginx's default logs (Debian's nginx.conf: `access_log /var/log/nginx/access.log`), every tunnel wrote
 * `GET /gangway/?token=…` to the access log, and a failing upstream wrote `upstream:
 * "http://…/?token=…"` (and the request line) to error.log: the deploy kit undid the daemon's redaction.
 * The snippet now logs its requests in a format without the query, and its error log only from crit up.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { watch } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startNginx, type Nginx } from '../helpers/nginx.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'nginx-logged-token-Rb62'
const GUESS = 'nginx-logged-guess-Tf19'

/** Every log file nginx wrote in its directory, concatenated, with its stderr. */
async function allLogs(nginx: Nginx): Promise<string> {
  const files = (await readdir(nginx.logDir)).filter((f) => f.endsWith('.log'))
  const texts = await Promise.all(files.map((f) => readFile(join(nginx.logDir, f), 'utf8')))
  return [...texts, nginx.stderr()].join('\n')
}

/** Resolves once `done(logs)` holds; re-checks whenever a file in the log directory changes. */
async function waitForLogs(nginx: Nginx, done: (logs: string) => boolean): Promise<string> {
  const watcher = watch(nginx.logDir)
  d.add(() => watcher.close())
  for (let i = 0; i < 1000; i++) {
    const changed = once(watcher, 'change')
    const logs = await allLogs(nginx)
    if (done(logs)) return logs
    await changed
  }
  throw new Error(`logs never complete: ${await allLogs(nginx)}`)
}

async function tunnel(nginx: Nginx, token: string): Promise<number> {
  const ws = new WebSocket(nginx.url(`?token=${token}&route=echo`), { ca: nginx.ca })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  ws.once('open', () => ws.send('ping'))
  const code = await Promise.race([
    once(ws, 'message').then(() => 1000),
    once(ws, 'close').then(([c]) => c as number),
  ])
  if (code === 1000) {
    ws.close(1000)
    await once(ws, 'close')
  }
  return code
}

describe('regression: the nginx snippet logged tokens', () => {
  it('neither the access log nor the error log (a failing upstream) shows a token', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const routes = parseRoutes(
      { echo: { target: `127.0.0.1:${echo.port}`, tokens: [TOKEN] } },
      'routes',
    )
    const { port } = await startAccessTunnel(d, { routes, trustProxy: '127.0.0.1' }, memoryLogger())
    // The first upstream refuses connections: nginx logs the failure, then tries the live one.
    const nginx = await startNginx(d, [await freePort(), port])
    // The first attempt also waits for nginx to accept (it writes no "ready" line).
    let first = 0
    for (let i = 0; i < 100 && first !== 1000; i++) first = await tunnel(nginx, TOKEN)
    expect(first).toBe(1000)
    expect(await tunnel(nginx, GUESS)).toBe(4401)
    const logs = await waitForLogs(
      nginx,
      (text) => (text.match(/GET \/gangway\//g) ?? []).length >= 2,
    )
    expect(logs).not.toContain(TOKEN)
    expect(logs).not.toContain(GUESS)
    expect(logs).toMatch(/upstream=127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+\/502, 101/) // failure still seen
  })
})
