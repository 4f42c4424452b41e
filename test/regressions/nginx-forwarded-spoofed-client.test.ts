/**
 * Found by the outside attack review (issue 13, finding 2): behind the shipped nginx snippet, nginx sets
 * X-Forwarded-For but passes a client's own `Forwarded` header through, and Gangway preferred `Forwarded`.
 * A client varying `Forwarded: for=198.51.100.N` never reached 4429 (unlimited token guessing), could lock
 * a victim's address out, and faked its address in logs, the admin API and PROXY headers to targets. Now
 * Gangway reads one header, the one the operator names (default X-Forwarded-For), from its right end past
 * trusted proxies; and the snippet removes a client's `Forwarded`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { firstWsThrough, startNginx, type Nginx } from '../helpers/nginx.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const GOOD = 'good-token-Qz81'

/** A client on 127.0.0.2 (nginx connects to Gangway from 127.0.0.1): its close code and reason. */
async function attempt(
  nginx: Nginx,
  token: string,
  headers: Record<string, string>,
): Promise<{ code: number; reason: string }> {
  const ws = new WebSocket(nginx.url(), {
    ca: nginx.ca,
    localAddress: '127.0.0.2',
    headers: { Authorization: `Bearer ${token}`, ...headers },
  })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  return { code, reason: reason.toString() }
}

async function fixture(trustProxyHeader?: string) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const logger = memoryLogger()
  const routes = parseRoutes(
    { echo: { target: `127.0.0.1:${echo.port}`, tokens: [GOOD] } },
    'routes',
  )
  const { port } = await startAccessTunnel(
    d,
    {
      routes,
      trustProxy: '127.0.0.1',
      maxAuthFailures: 3,
      ...(trustProxyHeader === undefined ? {} : { trustProxyHeader }),
    },
    logger,
  )
  const nginx = await startNginx(d, [port])
  await firstWsThrough(d, nginx, `?token=${GOOD}`)
  return { nginx, logger }
}

describe('regression: a client forging its address behind the nginx snippet', () => {
  it('varying Forwarded (and a forged X-Forwarded-For) still reaches 4429, under the real address', async () => {
    const { nginx, logger } = await fixture()
    const codes: number[] = []
    for (let n = 1; n <= 5; n++) {
      const forged = `198.51.100.${n}`
      const { code } = await attempt(nginx, `wrong-${n}`, {
        Forwarded: `for=${forged}`,
        'X-Forwarded-For': forged,
        'X-Real-IP': forged,
      })
      codes.push(code)
    }
    expect(codes).toEqual([4401, 4401, 4401, 4429, 4429])
    const clients = logger.lines
      .filter((l) => l.msg === 'tunnel refused')
      .map((l) => l.fields['client'])
    expect(new Set(clients)).toEqual(new Set(['127.0.0.2']))
  })

  it("the snippet removes a client's Forwarded: a daemon reading it sees nginx, not the forgery", async () => {
    const { nginx, logger } = await fixture('Forwarded')
    expect((await attempt(nginx, 'wrong', { Forwarded: 'for=198.51.100.77' })).code).toBe(4401)
    const line = logger.lines.find((l) => l.msg === 'tunnel refused')
    expect(line?.fields['client']).toMatch(/^127\.0\.0\.1:\d+$/)
  })
})
