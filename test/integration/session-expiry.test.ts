/**
 * Sessions end when their token does: a tunnel opened with a token that expires (JWT exp, token API
 * expiresAt, Redis TTL) closes with 4401 "token expired", gangway.v1 clients are warned first, and a route's
 * maxDuration closes every tunnel with 4408. Real clocks with short bounds; every wait is on an event.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { Redis } from 'ioredis'
import type WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'
import type { Config } from '../../src/config/options.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'an-hmac-secret-that-is-long-enough-0123456789'

async function echoTarget(): Promise<string> {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  return `127.0.0.1:${echo.port}`
}

async function jwtDaemon(overrides: Partial<Config> = {}) {
  const dir = await tempDir(d, 'gangway-expiry-')
  const keyFile = join(dir, 'secret')
  await writeFile(keyFile, SECRET)
  const target = await echoTarget()
  const logger = memoryLogger()
  const daemon = await startAccessTunnel(
    d,
    { jwtKey: keyFile, allow: [target], ...overrides },
    logger,
  )
  return { ...daemon, target, logger }
}

function sign(claims: Record<string, unknown>, expSeconds: number): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(expSeconds)
    .sign(Buffer.from(SECRET))
}

/** Every text message and the close, in order. */
function events(ws: WebSocket): {
  log: string[]
  closed: Promise<{ code: number; reason: string }>
} {
  const log: string[] = []
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (!binary) log.push(data.toString())
  })
  const closed = once(ws, 'close').then(([code, reason]) => {
    log.push(`close ${String(code)}`)
    return { code: code as number, reason: (reason as Buffer).toString() }
  })
  return { log, closed }
}

const nowS = (): number => Math.floor(Date.now() / 1000)

describe('session expiry', () => {
  it('closes a JWT tunnel with 4401 "token expired" at exp, after an "expiring" warning to gangway.v1', async () => {
    const daemon = await jwtDaemon({ sessionExpiryWarningMs: 1000 })
    const token = await sign({ target: daemon.target }, nowS() + 2)
    let seen: ReturnType<typeof events> | undefined
    await openWs(d, daemon.url, {
      protocols: ['gangway.v1'],
      headers: { authorization: `Bearer ${token}` },
      beforeOpen: (ws) => void (seen = events(ws)),
    })
    expect(await seen!.closed).toEqual({ code: 4401, reason: 'token expired' })
    const types = seen!.log.map((m) =>
      m.startsWith('{') ? (JSON.parse(m) as { type: string }).type : m,
    )
    expect(types.filter((t) => t === 'expiring' || t.startsWith('close'))).toEqual([
      'expiring',
      'close 4401',
    ])
    const warning = JSON.parse(seen!.log.find((m) => m.includes('expiring'))!) as Record<
      string,
      unknown
    >
    expect(warning).toMatchObject({ type: 'expiring', reason: 'token expired' })
    expect(warning['in']).toBeGreaterThanOrEqual(1)
  })

  it('closes at once a tunnel whose token is already past exp (within the clock tolerance)', async () => {
    const daemon = await jwtDaemon()
    const token = await sign({ target: daemon.target }, nowS() - 2)
    let seen: ReturnType<typeof events> | undefined
    await openWs(d, daemon.url, {
      headers: { authorization: `Bearer ${token}` },
      beforeOpen: (ws) => void (seen = events(ws)),
    })
    expect(await seen!.closed).toEqual({ code: 4401, reason: 'token expired' })
  })

  it('with --session-expiry ignore, the token’s expiry is not enforced; a route’s maxDuration still is (4408)', async () => {
    const target = await echoTarget()
    const routes = parseRoutes({ svc: { target, maxDuration: 2.5 } }, 'routes')
    const daemon = await jwtDaemon({ sessionExpiry: 'ignore', routes })
    const token = await sign({ target: 'svc' }, nowS() + 1)
    let seen: ReturnType<typeof events> | undefined
    const ws = await openWs(d, daemon.url, {
      protocols: ['gangway.v1'],
      headers: { authorization: `Bearer ${token}` },
      beforeOpen: (w) => void (seen = events(w)),
    })
    expect(await seen!.closed).toEqual({ code: 4408, reason: 'session time limit reached' })
    expect(seen!.log.some((m) => m.includes('"reason":"session time limit reached"'))).toBe(true)
    void ws
  })

  it('closes a tunnel whose token API answer had an expiresAt', async () => {
    const target = await echoTarget()
    const api = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ target, expiresAt: new Date(Date.now() + 1500).toISOString() }))
    })
    api.listen(0, '127.0.0.1')
    await once(api, 'listening')
    d.add(() => new Promise((r) => api.close(r)))
    const port = (api.address() as { port: number }).port
    const daemon = await startAccessTunnel(
      d,
      { tokenApi: `http://127.0.0.1:${port}/t/%s`, allow: [target], tokenApiCacheMs: 0 },
      memoryLogger(),
    )
    let seen: ReturnType<typeof events> | undefined
    await openWs(d, `${daemon.url}?token=api-token-1`, {
      beforeOpen: (w) => void (seen = events(w)),
    })
    expect(await seen!.closed).toEqual({ code: 4401, reason: 'token expired' })
  })

  it('closes a tunnel whose Redis token key had a TTL', async () => {
    const target = await echoTarget()
    const redis = await startRedisServer(d)
    const admin = new Redis(redis.url)
    d.add(() => admin.disconnect())
    await admin.set('gw:redis-token-1', target, 'PX', 1500)
    const daemon = await startAccessTunnel(
      d,
      { tokenRedis: redis.url, tokenRedisPrefix: 'gw:', allow: [target] },
      memoryLogger(),
    )
    let seen: ReturnType<typeof events> | undefined
    await openWs(d, `${daemon.url}?token=redis-token-1`, {
      beforeOpen: (w) => void (seen = events(w)),
    })
    expect(await seen!.closed).toEqual({ code: 4401, reason: 'token expired' })
  })
})
