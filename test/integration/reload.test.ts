/**
 * The reloader in process (src/reload.ts): a swap during an admission that is still resolving, per-token
 * connection slots across a swap, and per-connection settings that change for new tunnels only.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { WebSocket } from 'ws'
import { DEFAULTS, type Config } from '../../src/config/options.js'
import { parseRoutes } from '../../src/config/routes.js'
import { singleUseToken } from '../helpers/jwt.js'
import { startReloadable } from '../helpers/reload.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN_A = 'inproc-token-a-0123456789'
const TOKEN_B = 'inproc-token-b-0123456789'

async function echoPort(): Promise<number> {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  return echo.port
}

function configWith(routes: Record<string, unknown>, overrides: Partial<Config> = {}): Config {
  return Object.freeze({
    ...DEFAULTS,
    heartbeatMs: 0,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target: undefined,
    routes: parseRoutes(routes, 'routes'),
    ...overrides,
  }) as Config
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

async function echoOnce(ws: WebSocket, text: string): Promise<string> {
  ws.send(Buffer.from(text))
  const [data] = (await once(ws, 'message')) as [Buffer]
  return data.toString()
}

describe('config reload in process', () => {
  it('swaps the gate while an admission is resolving on the old one: it completes there, and the old gate closes only afterwards', async () => {
    const [a, b] = [await echoPort(), await echoPort()]
    const events: string[] = []
    const admitting = deferred()
    const proceed = deferred()
    const gateClosed = deferred()
    const { reloader, url } = await startReloadable(
      d,
      configWith({ a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A] } }),
      () => configWith({ b: { target: `127.0.0.1:${b}`, tokens: [TOKEN_B] } }),
      (real) => ({
        async admit(req, ip) {
          events.push('admit started')
          admitting.resolve()
          await proceed.promise
          const answer = await real.admit(req, ip)
          events.push('admit answered')
          return answer
        },
        reload: () => real.reload(),
        async close() {
          events.push('old gate closed')
          await real.close()
          gateClosed.resolve()
        },
      }),
    )
    d.add(() => proceed.resolve()) // if the test fails halfway, the drain must not wait for it forever
    const opening = openWs(d, `${url}?token=${TOKEN_A}`)
    await admitting.promise
    const report = await reloader.reload()
    expect(report).toMatchObject({ ok: true, changed: ['routes'] })
    events.push('reloaded')
    // New connections use the new gate at once; the old route is gone for them.
    expect(await echoOnce(await openWs(d, `${url}?token=${TOKEN_B}`), 'new')).toBe('new')
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4401)
    expect(events).not.toContain('old gate closed')

    proceed.resolve()
    const early = await opening
    expect(await echoOnce(early, 'admitted by the old gate')).toBe('admitted by the old gate')
    await gateClosed.promise
    expect(events).toEqual(['admit started', 'reloaded', 'admit answered', 'old gate closed'])
  })

  it('keeps per-token connection counts across a reload, and a tunnel from before releases its slot', async () => {
    const a = await echoPort()
    const route = (extra: Record<string, unknown>) =>
      configWith({
        a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A], maxConnections: 1, ...extra },
      })
    const { reloader, url, logger } = await startReloadable(d, route({}), () =>
      route({ idleTimeout: 600 }),
    )
    const first = await openWs(d, `${url}?token=${TOKEN_A}`)
    expect((await reloader.reload()).ok).toBe(true)
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4429)
    const firstClosed = closed(first)
    first.close()
    await firstClosed
    await logger.waitFor('tunnel closed')
    expect(await echoOnce(await openWs(d, `${url}?token=${TOKEN_A}`), 'x')).toBe('x')
  })

  it('keeps the failed-attempt counts of client addresses across a reload (same maxAuthFailures)', async () => {
    const a = await echoPort()
    const config = (idle: number) =>
      configWith(
        { a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A] } },
        { maxAuthFailures: 2, idleTimeoutMs: idle },
      )
    const { reloader, url } = await startReloadable(d, config(0), () => config(60_000))
    for (let i = 0; i < 2; i++) {
      expect((await connectAndClose(`${url}?token=wrong-token-${i}-0123456789`)).code).toBe(4401)
    }
    expect((await reloader.reload()).ok).toBe(true)
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4429)
  })

  it('applies per-connection settings to new tunnels only (text policy, connection limit)', async () => {
    const a = await echoPort()
    const routes = { a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A] } }
    const { reloader, url } = await startReloadable(d, configWith(routes), () =>
      configWith(routes, { textPolicy: 'reject', maxConnections: 2 }),
    )
    const before = await openWs(d, `${url}?token=${TOKEN_A}`)
    expect(await reloader.reload()).toMatchObject({
      ok: true,
      changed: expect.arrayContaining(['maxConnections', 'text']) as unknown,
    })
    const after = await openWs(d, `${url}?token=${TOKEN_A}`)
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4429) // 2 open
    before.send('still forwarded')
    const [echoed] = (await once(before, 'message')) as [Buffer]
    expect(echoed.toString()).toBe('still forwarded')
    const afterClosed = closed(after)
    after.send('rejected now')
    expect((await afterClosed).code).toBe(1003)
  })

  it('a smaller maxMessageSize applies to tunnels opened after the reload', async () => {
    const a = await echoPort()
    const routes = { a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A] } }
    const { reloader, url } = await startReloadable(d, configWith(routes), () =>
      configWith(routes, { maxMessageBytes: 1024 }),
    )
    const before = await openWs(d, `${url}?token=${TOKEN_A}`)
    expect((await reloader.reload()).changed).toEqual(['maxMessageSize'])
    const big = 'x'.repeat(4096)
    expect(await echoOnce(before, big)).toBe(big)
    const after = await openWs(d, `${url}?token=${TOKEN_A}`)
    const afterClosed = closed(after)
    after.send(big) // text: binary messages have no size limit
    expect((await afterClosed).code).toBe(1009)
  })

  it('a failed load changes nothing and is reported, and the next reload runs', async () => {
    const a = await echoPort()
    const good = configWith({ a: { target: `127.0.0.1:${a}`, tokens: [TOKEN_A] } })
    let fail = true
    const { reloader, url } = await startReloadable(d, good, () => {
      if (fail) return configWith({}, { tokenFile: '/nonexistent/tokens' })
      return good
    })
    const report = await reloader.reload()
    expect(report.ok).toBe(false)
    expect(report.error).toMatch(/nonexistent/)
    expect(reloader.current()).toBe(good)
    expect(await echoOnce(await openWs(d, `${url}?token=${TOKEN_A}`), 'y')).toBe('y')
    fail = false
    expect((await reloader.reload()).ok).toBe(true)
  })

  it('remembers used single-use signed tokens across a reload: no replay', async () => {
    const a = await echoPort()
    const keyFile = join(await tempDir(d, 'gangway-reload-jwt-'), 'secret')
    // Text, not raw bytes: a raw key ending in a newline byte loses it (one trailing newline is removed)
    // and is then one byte short of the 32 required, about one run in 256.
    await writeFile(keyFile, randomBytes(32).toString('base64'))
    const config = (idle: number) =>
      configWith(
        {},
        {
          jwtKey: keyFile,
          jwtSingleUse: true,
          allow: [`127.0.0.1:${a}`],
          idleTimeoutMs: idle,
        },
      )
    const { reloader, url } = await startReloadable(d, config(0), () => config(60_000))
    const token = await singleUseToken(keyFile, `127.0.0.1:${a}`)
    expect(await echoOnce(await openWs(d, `${url}?token=${token}`), 'once')).toBe('once')
    expect((await reloader.reload()).ok).toBe(true)
    expect((await connectAndClose(`${url}?token=${token}`)).code).toBe(4401)
  })
})
