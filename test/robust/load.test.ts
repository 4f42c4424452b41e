/**
 * Load: thousands of concurrent tunnels with traffic through a daemon in its own process (2 cores shared
 * with the clients and the target). Every byte must arrive (checksums), /healthz must keep answering, and
 * connections beyond --max-connections must be refused cleanly with 4429 while the others carry on.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { Digest } from '../helpers/data.js'
import { startEchoServer } from '../helpers/tcp.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

/** Opens `count` WebSockets, `batch` at a time (the listen backlog is finite), resolving with them all. */
async function openMany(url: string, count: number, batch: number): Promise<WebSocket[]> {
  const all: WebSocket[] = []
  for (let i = 0; i < count; i += batch) {
    const opened = await Promise.all(
      Array.from({ length: Math.min(batch, count - i) }, async () => {
        const ws = new WebSocket(url, { perMessageDeflate: false })
        d.add(() => ws.terminate())
        ws.on('error', () => {})
        await once(ws, 'open')
        return ws
      }),
    )
    all.push(...opened)
  }
  return all
}

/** Sends `payload` and resolves with whether exactly the same bytes came back. */
async function echoes(ws: WebSocket, payload: Buffer): Promise<boolean> {
  const got = new Digest()
  const want = new Digest()
  want.update(payload)
  const done = new Promise<void>((resolve) => {
    ws.on('message', function onMessage(m: Buffer) {
      got.update(m)
      if (got.bytes >= payload.length) {
        ws.off('message', onMessage)
        resolve()
      }
    })
  })
  ws.send(payload)
  await done
  return got.hex() === want.hex()
}

describe('load', () => {
  it(`${scale(500, 4000)} concurrent tunnels with traffic: no byte lost, /healthz answers, the excess is refused with 4429`, async () => {
    const tunnels = scale(500, 4000)
    const excess = scale(50, 400)
    const payload = randomBytes(scale(16, 64) * 1024)
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const proc = spawnGangway(d, [
      '--log-format',
      'json',
      '--max-connections',
      String(tunnels),
      '127.0.0.1:0',
      `127.0.0.1:${echo.port}`,
    ])
    const port = portOf((await proc.waitForLog((r) => r.msg === 'listening'))['listen'])
    const url = `ws://127.0.0.1:${port}/`

    const sockets = await openMany(url, tunnels, 200)
    // Traffic on every tunnel at once, while /healthz is asked repeatedly.
    const traffic = Promise.all(sockets.map((ws) => echoes(ws, payload)))
    const latencies: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      const res = await fetch(`http://127.0.0.1:${port}/healthz`)
      expect(res.status).toBe(200)
      await res.json()
      latencies.push(performance.now() - t0)
    }
    const intact = await traffic
    expect(intact.filter((ok) => !ok)).toHaveLength(0)

    // Beyond the limit: every extra connection is completed and closed with 4429; the others are unaffected.
    const refusals = await Promise.all(
      Array.from({ length: excess }, async () => {
        const ws = new WebSocket(url, { perMessageDeflate: false })
        d.add(() => ws.terminate())
        ws.on('error', () => {})
        const [code] = (await once(ws, 'close')) as [number]
        return code
      }),
    )
    expect(new Set(refusals)).toEqual(new Set([4429]))
    expect(await echoes(sockets[0]!, payload)).toBe(true)

    latencies.sort((a, b) => a - b)
    console.log(
      `load: ${tunnels} tunnels × ${payload.length / 1024} KiB echoed intact; ${excess} refused with 4429; ` +
        `/healthz under load p50 ${latencies[10]!.toFixed(1)} ms, max ${latencies[19]!.toFixed(1)} ms`,
    )
    for (const ws of sockets) ws.close()
    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
  })
})
