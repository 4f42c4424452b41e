/**
 * Resolver backends going away and coming back: Redis (`--token-redis`, a redis-server killed with SIGKILL
 * and started again on the same port) and the HTTP token API (`--token-api`, a node http server stopped,
 * then answering 503, hanging, and started again on the same port). While a backend is down, new
 * connections get 4503 (never 4401, and never counted as failed attempts), live tunnels keep relaying; once
 * it is back, new connections succeed without restarting the daemon. No crash, no unhandled rejection, and
 * one log line per refused attempt.
 */
import http from 'node:http'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, type MemoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const CYCLES = scale(1, 5)
/** Attempts while the backend is down: more than --max-auth-failures (10), which must not trigger. */
const DOWN_ATTEMPTS = 12
/** Bound on waiting for a backend client to reconnect on its own timer (ioredis backs off up to 2 s). */
const RECOVERY_ATTEMPTS = 100
const RECOVERY_INTERVAL_MS = 50

const rejections: unknown[] = []
const onRejection = (reason: unknown): void => void rejections.push(reason)
beforeAll(() => void process.on('unhandledRejection', onRejection))
afterAll(() => void process.off('unhandledRejection', onRejection))

async function echoesThrough(ws: WebSocket, text: string): Promise<void> {
  const reply = new Promise<string>((resolve) =>
    ws.once('message', (b: Buffer) => resolve(b.toString())),
  )
  ws.send(Buffer.from(text))
  expect(await reply).toBe(text)
}

/** One attempt: the open tunnel (it echoed a probe), or the close code it was refused with. */
async function attempt(url: string): Promise<WebSocket | number> {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  return new Promise((resolve) => {
    ws.once('open', () => ws.send(Buffer.from('probe')))
    ws.once('message', () => resolve(ws))
    ws.once('close', (code: number) => resolve(code))
  })
}

/**
 * Attempts until one is served: the backend's client reconnects on its own timer (ioredis backs off up to
 * 2 s), which the test cannot observe from outside, so this retries, bounded in count. Every attempt
 * before that must be a 4503.
 */
async function untilServed(url: string): Promise<WebSocket> {
  for (let i = 0; i < RECOVERY_ATTEMPTS; i++) {
    const result = await attempt(url)
    if (typeof result !== 'number') return result
    expect(result).toBe(4503)
    await delay(RECOVERY_INTERVAL_MS)
  }
  throw new Error(`not served after ${RECOVERY_ATTEMPTS} attempts`)
}

/** Every refused attempt: 4503, one log line each, none of them 4401 or 4429. */
function expectOutageRefusals(codes: number[], logger: MemoryLogger, before: number): void {
  expect(codes).toEqual(codes.map(() => 4503))
  const refused = logger.lines.slice(before).filter((l) => l.msg === 'tunnel refused')
  expect(refused.length).toBe(codes.length)
  expect(logger.lines.length - before).toBeLessThanOrEqual(codes.length * 2 + 2)
}

describe('resolver outage and recovery', () => {
  it('Redis killed and restarted on the same port', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const redis = await startRedisServer(d)
    const seed = async () => {
      const client = new Redis(redis.port, '127.0.0.1', { lazyConnect: true })
      await client.connect()
      for (const token of ['tok-live', 'tok-new'])
        await client.set(`gw:${token}`, `127.0.0.1:${echo.port}`)
      client.disconnect()
    }
    await seed()
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(
      d,
      {
        tokenRedis: redis.url,
        tokenRedisPrefix: 'gw:',
        allow: [`127.0.0.1/32:${echo.port}`],
        connectTimeoutMs: 1000,
      },
      logger,
    )
    const live = await openWs(d, `${url}?token=tok-live`)
    await echoesThrough(live, 'before')
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await redis.stop()
      const before = logger.lines.length
      const codes: number[] = []
      for (let i = 0; i < DOWN_ATTEMPTS; i++) {
        const token = i % 2 === 0 ? 'tok-new' : `unknown-${i}`
        codes.push((await connectAndClose(`${url}?token=${token}`)).code)
        await echoesThrough(live, `during ${cycle}.${i}`)
      }
      expectOutageRefusals(codes, logger, before)
      await redis.start() // empty: the keys are written again
      await seed()
      const ws = await untilServed(`${url}?token=tok-new`)
      await echoesThrough(ws, `after ${cycle}`)
      ws.close()
      await echoesThrough(live, `after ${cycle}`)
      expect((await connectAndClose(`${url}?token=still-unknown`)).code).toBe(4401)
    }
    live.close()
    expect(rejections).toEqual([])
  })

  it('HTTP token API stopped, answering 503, hanging, and started again on the same port', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    let mode: 'ok' | '503' | 'hang' = 'ok'
    const sockets = new Set<Socket>()
    const api = http.createServer((req, res) => {
      if (mode === 'hang') return // never answers: the daemon's timeout ends the lookup
      if (mode === '503') return void res.writeHead(503).end('maintenance')
      const token = decodeURIComponent((req.url ?? '').replace(/^\/t\//, ''))
      if (token === 'tok-live' || token === 'tok-new') res.end(`127.0.0.1:${echo.port}`)
      else res.writeHead(404).end()
    })
    api.on('connection', (s) => {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    })
    api.listen(0, '127.0.0.1')
    await once(api, 'listening')
    const port = (api.address() as { port: number }).port
    const stopApi = async () => {
      if (!api.listening) return
      const closed = new Promise((r) => api.close(r))
      for (const s of sockets) s.destroy()
      await closed
    }
    d.add(stopApi)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(
      d,
      {
        tokenApi: `http://127.0.0.1:${port}/t/%s`,
        tokenApiCacheMs: 0,
        allow: [`127.0.0.1/32:${echo.port}`],
        connectTimeoutMs: 300, // also the API's timeout
      },
      logger,
    )
    const live = await openWs(d, `${url}?token=tok-live`)
    await echoesThrough(live, 'before')
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      for (const phase of ['stopped', '503', 'hang'] as const) {
        if (phase === 'stopped') await stopApi()
        else {
          if (!api.listening) {
            api.listen(port, '127.0.0.1')
            await once(api, 'listening')
          }
          mode = phase
        }
        const before = logger.lines.length
        const codes: number[] = []
        for (let i = 0; i < (phase === 'hang' ? 3 : DOWN_ATTEMPTS); i++) {
          codes.push((await connectAndClose(`${url}?token=${i % 2 ? 'tok-new' : `x${i}`}`)).code)
          await echoesThrough(live, `${phase} ${cycle}.${i}`)
        }
        expectOutageRefusals(codes, logger, before)
      }
      mode = 'ok'
      const ws = await openWs(d, `${url}?token=tok-new`) // no reconnect timer: served at once
      await echoesThrough(ws, `after ${cycle}`)
      ws.close()
      expect((await connectAndClose(`${url}?token=unknown`)).code).toBe(4401)
    }
    live.close()
    expect(rejections).toEqual([])
  })
})
