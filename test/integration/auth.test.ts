import { afterEach, describe, expect, it } from 'vitest'
import net from 'node:net'
import type WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { bearerSubprotocol } from '../../src/auth/carriers.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { rawRequest, upgradeRequest } from '../helpers/raw-http.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'route-secret-Zq81'
const OTHER = 'second-secret-Kp22'

async function echo(): Promise<number> {
  const server = await startEchoServer()
  d.add(() => server.close())
  return server.port
}

async function routed(extra: Record<string, unknown> = {}, overrides = {}) {
  const port = await echo()
  const logger = memoryLogger()
  const routes = parseRoutes(
    { vnc: { target: `127.0.0.1:${port}`, tokens: [SECRET, OTHER], ...extra } },
    'routes',
  )
  const tunnel = await startAccessTunnel(d, { routes, ...overrides }, logger)
  return { ...tunnel, logger, echoPort: port }
}

/** Sends a raw request and resolves with the response head (for a 101 that keeps the socket open). */
async function responseHead(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  d.add(() => socket.destroy())
  socket.on('error', () => {})
  socket.write(request)
  let text = ''
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    text += chunk.toString('latin1')
    if (text.includes('\r\n\r\n')) break
  }
  return text.slice(0, text.indexOf('\r\n\r\n'))
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) =>
    ws.once('message', (data: Buffer) => resolve(data.toString())),
  )
  ws.send(Buffer.from(text))
  return reply
}

describe('tokens and routes', () => {
  it('opens a route with its token in each carrier', async () => {
    const { url, logger } = await routed(
      {},
      { hostToken: false, allowedOrigins: ['http://app.test'] },
    )
    const carriers: Array<[string, WebSocket.ClientOptions & { protocols?: string[] }, string]> = [
      ['subprotocol', { protocols: ['binary', bearerSubprotocol(SECRET)] }, url],
      [
        'authorization',
        { headers: { authorization: `Bearer ${SECRET}` }, origin: 'http://app.test' },
        url,
      ],
      [
        'cookie',
        { headers: { cookie: `gangway_token=${SECRET}` }, origin: 'http://app.test' },
        url,
      ],
      ['query', { origin: 'http://app.test' }, `${url}websockify?token=${SECRET}`],
    ]
    for (const [name, options, where] of carriers) {
      const ws = await openWs(d, where, { origin: 'http://app.test', ...options })
      expect(await roundTrip(ws, name), name).toBe(name)
      if (name === 'subprotocol') expect(ws.protocol).toBe('binary') // never the bearer entry
      ws.close()
    }
    expectNoSecretsLogged(logger, [SECRET])
  })

  it('never selects the bearer subprotocol, even when it is the only one offered', async () => {
    const { port } = await routed()
    const response = await responseHead(
      port,
      upgradeRequest({ 'Sec-WebSocket-Protocol': bearerSubprotocol(SECRET) }),
    )
    expect(response).toMatch(/^HTTP\/1\.1 101 /)
    expect(response).not.toMatch(/Sec-WebSocket-Protocol/i)
  })

  it('refuses a missing, unknown or malformed token with the same 4401 and logs its fingerprint only', async () => {
    const { url, logger, echoPort } = await routed()
    const answers = [
      await connectAndClose(url),
      await connectAndClose(`${url}?token=not-a-token-123`),
      await connectAndClose(url, { headers: { authorization: 'Bearer' } }),
    ]
    for (const answer of answers) {
      expect(answer).toMatchObject({ opened: true, code: 4401, reason: 'unauthorized' })
    }
    const refusals = logger.lines.filter((l) => l.msg === 'tunnel refused')
    expect(refusals).toHaveLength(3)
    expect(refusals[1]?.fields).toMatchObject({
      code: 4401,
      carrier: 'query',
      path: '/?token=[redacted]',
    })
    expect(refusals[1]?.fields['token']).toMatch(/^[0-9a-f]{8}$/)
    expectNoSecretsLogged(logger, ['not-a-token-123'])
    expect(echoPort).toBeGreaterThan(0)
  })

  it('answers 401 with WWW-Authenticate before the upgrade with --refuse-with http', async () => {
    const { port } = await routed({}, { refuseWith: 'http' })
    const response = await rawRequest(port, upgradeRequest({}, '/?token=wrong'))
    expect(response).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/)
    expect(response).toMatch(/WWW-Authenticate: Bearer/i)
  })

  it('applies the route options: text policy and per-route connection limit (4429)', async () => {
    const { url } = await routed({ text: 'reject', maxConnections: 1 })
    const first = await openWs(d, `${url}?token=${SECRET}`)
    const second = await connectAndClose(`${url}?token=${OTHER}`)
    expect(second).toMatchObject({ code: 4429, reason: 'too many connections for this token' })
    const done = closed(first)
    first.send('text')
    expect((await done).code).toBe(1003)
    const third = await openWs(d, `${url}?token=${SECRET}`) // the slot was given back
    third.close()
  })

  it('answers 4429 to an address after --max-auth-failures failed attempts, even with a good token', async () => {
    const { url, logger } = await routed({}, { maxAuthFailures: 3 })
    for (let i = 0; i < 3; i++)
      expect((await connectAndClose(`${url}?token=bad${i}`)).code).toBe(4401)
    expect(await connectAndClose(`${url}?token=${SECRET}`)).toMatchObject({
      code: 4429,
      reason: 'too many attempts',
    })
    expect(logger.lines.filter((l) => l.msg === 'tunnel refused')).toHaveLength(4)
  })
})

describe('origins and cookies', () => {
  it('refuses a disallowed Origin with 4403 before looking at the token', async () => {
    const { url } = await routed({}, { allowedOrigins: ['https://*.example.com'] })
    expect(
      await connectAndClose(`${url}?token=${SECRET}`, { origin: 'https://evil.test' }),
    ).toMatchObject({ code: 4403 })
    expect(await connectAndClose(`${url}?token=${SECRET}`)).toMatchObject({ code: 4403 })
    const ws = await openWs(d, `${url}?token=${SECRET}`, { origin: 'https://app.example.com' })
    ws.close()
  })

  it('refuses a cookie token when no allowedOrigins are configured (the Origin check is mandatory)', async () => {
    const { url, logger } = await routed()
    const answer = await connectAndClose(url, {
      headers: { cookie: `gangway_token=${SECRET}` },
      origin: 'https://any.test',
    })
    expect(answer).toMatchObject({ code: 4403 })
    expect((await logger.waitFor('tunnel refused')).fields['reason']).toMatch(
      /cookie tokens need allowedOrigins/,
    )
    expectNoSecretsLogged(logger, [SECRET])
  })

  it('refuses a cookie token from a foreign origin', async () => {
    const { url } = await routed({}, { allowedOrigins: ['https://app.test'] })
    const cookie = { cookie: `gangway_token=${SECRET}` }
    expect(
      await connectAndClose(url, { headers: cookie, origin: 'https://evil.test' }),
    ).toMatchObject({ code: 4403 })
    const ws = await openWs(d, url, { headers: cookie, origin: 'https://app.test' })
    ws.close()
  })
})
