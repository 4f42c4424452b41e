/**
 * Token brute force is rate limited (`--max-auth-failures`, per client address, 60 s window): after that
 * many wrong tokens from one address, every attempt from it gets 4429, even with the right token, and the
 * resolver is no longer asked; another address is unaffected; after the window the address gets in again;
 * and the limiter's memory is bounded (it forgets the oldest addresses, and an address's old failures).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAccess, FAILURE_WINDOW_MS } from '../../src/auth/access.js'
import { createFailureLimiter } from '../../src/auth/limits.js'
import { allowOrigins } from '../../src/auth/origin.js'
import { parseRoutes } from '../../src/config/routes.js'
import { staticRoutes } from '../../src/targets/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'the-right-token-4f9c2e'
const MAX = 5
const GUESSES = scale(40, 400)
const ADDRESSES = scale(120_000, 1_000_000)

describe('token brute force', () => {
  it(`${MAX} wrong tokens from one address, in any carrier, then 4429 for it, even with the right token; another address is unaffected`, async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const routes = parseRoutes(
      { lab: { target: `127.0.0.1:${echo.port}`, tokens: [TOKEN] } },
      'routes',
    )
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(d, { routes, maxAuthFailures: MAX }, logger)
    const wrong = (i: number) => `guess-${i}-${'x'.repeat(i % 7)}`
    const carriers = [
      (t: string) => connectAndClose(`${url}?token=${t}`),
      (t: string) => connectAndClose(url, { headers: { authorization: `Bearer ${t}` } }),
      (t: string) =>
        connectAndClose(url, {
          headers: {
            'sec-websocket-protocol': `gangway.bearer.${Buffer.from(t).toString('base64url')}`,
          },
        }),
      (_t: string) => connectAndClose(`${url}?token=`), // a missing token counts too
    ]
    const codes: number[] = []
    for (let i = 0; i < GUESSES; i++) {
      const carrier = carriers[i % carriers.length] as (typeof carriers)[number]
      codes.push((await carrier(wrong(i))).code)
    }
    expect(codes.slice(0, MAX)).toEqual(Array(MAX).fill(4401))
    expect(codes.slice(MAX)).toEqual(Array(GUESSES - MAX).fill(4429))
    expect((await connectAndClose(`${url}?token=${TOKEN}`)).code).toBe(4429)
    expect(echo.sockets.length).toBe(0)

    // Another client address (127.0.0.2 is loopback too) is unaffected.
    const other = await openWs(d, `${url}?token=${TOKEN}`, { localAddress: '127.0.0.2' })
    const echoed = new Promise<string>((resolve) =>
      other.once('message', (b: Buffer) => resolve(b.toString())),
    )
    other.send(Buffer.from('unaffected'))
    expect(await echoed).toBe('unaffected')
    other.close()
    const refusedLines = logger.lines.filter((l) => l.msg === 'tunnel refused')
    expect(refusedLines.length).toBe(GUESSES + 1) // one line per attempt, no more
  })

  it('the resolver is not asked once an address is blocked, and the window lets it in again', async () => {
    let now = 1_000_000
    let lookups = 0
    const routes = staticRoutes(
      parseRoutes({ r: { target: '127.0.0.1:9', tokens: [TOKEN] } }, 'routes'),
    )
    const access = createAccess({
      resolver: {
        name: 'counting',
        resolve(token, req) {
          lookups++
          return routes.resolve(token, req)
        },
      },
      fixedTarget: undefined,
      policy: undefined,
      origins: allowOrigins([]),
      sources: { cookieName: 'gangway_token', hostToken: false },
      clientTargets: false,
      maxAuthFailures: MAX,
      connectTimeoutMs: 1000,
      now: () => now,
    })
    const admit = (token: string, ip = '192.0.2.7') =>
      access.admit({ url: `/?token=${token}`, headers: {} } as never, ip)
    for (let i = 0; i < MAX; i++) expect(await admit(`wrong-${i}`)).toMatchObject({ ok: false })
    expect(lookups).toBe(MAX)
    const blocked = await admit(TOKEN)
    expect(blocked.ok).toBe(false)
    if (!blocked.ok) expect(blocked.error.closeCode).toBe(4429)
    expect(lookups).toBe(MAX) // refused before the token is looked at
    const elsewhere = await admit(TOKEN, '198.51.100.1')
    expect(elsewhere.ok).toBe(true)
    now += FAILURE_WINDOW_MS + 1
    const later = await admit(TOKEN)
    expect(later.ok).toBe(true)
  })

  it(`memory is bounded: ${ADDRESSES.toLocaleString('en')} addresses, one failure each, keep at most 100,000 entries; old failures expire`, () => {
    let now = 0
    const limiter = createFailureLimiter(MAX, FAILURE_WINDOW_MS, () => now)
    for (let i = 0; i < ADDRESSES; i++) {
      limiter.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${i}`)
      if (i % 10_000 === 0) now++
    }
    expect(limiter.size()).toBeGreaterThanOrEqual(90_000) // it drops the oldest tenth at a time
    expect(limiter.size()).toBeLessThanOrEqual(100_000)
    // One address with many failures keeps only the last MAX timestamps, and forgets them after the window.
    for (let i = 0; i < 10_000; i++) limiter.fail('203.0.113.1')
    expect(limiter.isBlocked('203.0.113.1')).toBe(true)
    now += FAILURE_WINDOW_MS + 1
    expect(limiter.isBlocked('203.0.113.1')).toBe(false)
    expect(limiter.size()).toBeLessThanOrEqual(100_000)
  })
})
