import { afterEach, describe, expect, it } from 'vitest'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { Digest } from '../helpers/data.js'
import { hashIncoming, pushRandom } from '../helpers/peers.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'
import type { TunnelServer } from '../../src/gateway/server.js'
import type { BackpressureEvent } from '../../src/events.js'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import { OWN_READ } from '../../src/relay/read-buffers.js'

const KiB = 1024
const MiB = 1024 * KiB
const PUSHED = 256 * MiB
const HIGH_WATER = 1 * MiB

const d = createDisposer()
afterEach(() => d.run())

/**
 * Records the most bytes the daemon held, sampled at every backpressure transition (when the held amount
 * peaks) and on an interval (a measurement, not a synchronisation), and lets a test wait for a pause.
 */
/** Writes `total` random bytes in `size` writes, one per turn of the event loop (or per drain). */
async function trickle(socket: Socket, total: number, size: number): Promise<Digest> {
  const digest = new Digest()
  for (let sent = 0; sent < total && !socket.destroyed; sent += size) {
    const chunk = randomBytes(size)
    digest.update(chunk)
    if (socket.write(chunk)) await new Promise((resolve) => setImmediate(resolve))
    else await once(socket, 'drain')
  }
  return digest
}

/** Hashes every message of `ws` into `digest` (attached before the handshake completes). */
function hashInto(ws: WebSocket, digest: Digest): void {
  ws.on('message', (data: Buffer) => digest.update(data))
}

function watchHeldBytes(server: TunnelServer) {
  let max = 0
  let pauses = 0
  const pauseWaiters: Array<() => void> = []
  const sample = () => (max = Math.max(max, server.stats().heldBytes))
  const onEvent = (message: unknown) => {
    sample()
    if ((message as BackpressureEvent).paused) {
      pauses++
      pauseWaiters.splice(0).forEach((wake) => wake())
    }
  }
  subscribe('gangway:tunnel:backpressure', onEvent)
  const interval = setInterval(sample, 5)
  d.add(() => {
    clearInterval(interval)
    unsubscribe('gangway:tunnel:backpressure', onEvent)
  })
  return {
    get max() {
      return max
    },
    get pauses() {
      return pauses
    },
    firstPause: () =>
      new Promise<void>((resolve) => (pauses > 0 ? resolve() : pauseWaiters.push(resolve))),
  }
}

describe('backpressure keeps the daemon’s memory bounded', () => {
  it('a target that does not read: the client pushes 256 MiB, the daemon holds at most the high-water mark plus one read, and every byte arrives once it reads', async () => {
    const target = await startTcpServer((socket) => socket.pause()) // never reads until told
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port), { highWaterMarkBytes: HIGH_WATER })
    const held = watchHeldBytes(server)
    const ws = await openWs(d, server.url())
    const targetSocket = await target.accepted(0)

    // The client ignores its own backpressure and queues all 256 MiB at once: the pressure is real.
    const sent = new Digest()
    const pool = randomBytes(PUSHED / 4)
    for (let offset = 0; offset < PUSHED; offset += 64 * KiB) {
      const chunk = pool.subarray(offset % pool.length, (offset % pool.length) + 64 * KiB)
      sent.update(chunk)
      ws.send(chunk)
    }
    await held.firstPause()
    const heldAtPause = server.stats().heldBytes
    // Nearly everything is still waiting in the client, not in the daemon.
    expect(ws.bufferedAmount).toBeGreaterThan(200 * MiB)
    // The client is paused by the bytes queued for the target: the mark, plus the read that crossed it.
    expect(heldAtPause).toBeGreaterThan(HIGH_WATER)
    expect(heldAtPause).toBeLessThanOrEqual(HIGH_WATER + OWN_READ)

    const received = hashIncoming(targetSocket)
    targetSocket.resume()
    const wsClosed = closed(ws)
    ws.close(1000)
    const got = await received

    expect(got.bytes).toBe(PUSHED)
    expect(got.hex()).toBe(sent.hex())
    expect((await wsClosed).code).toBe(1000)
    // Bound: the high-water mark plus what one read of the WebSocket yields.
    expect(held.max).toBeLessThanOrEqual(HIGH_WATER + OWN_READ)
  })

  it('a client that does not read: the target pushes 256 MiB, the daemon holds at most the high-water mark plus one read, and every byte arrives once it reads', async () => {
    let pushed: Promise<Digest> | undefined
    const target = await startTcpServer((socket) => {
      pushed = pushRandom(socket, PUSHED).then((digest) => {
        socket.end()
        return digest
      })
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port), { highWaterMarkBytes: HIGH_WATER })
    const held = watchHeldBytes(server)
    const received = new Digest()
    const ws = await openWs(d, server.url(), { beforeOpen: (w) => void hashInto(w, received) })
    ws.pause() // stop reading the socket: the browser that never reads

    await held.firstPause()
    // The target's reads go into reused buffers of up to OWN_READ (256 KiB) since issue #15.
    expect(server.stats().heldBytes).toBeLessThanOrEqual(HIGH_WATER + OWN_READ)

    const wsClosed = closed(ws)
    ws.resume()
    expect((await wsClosed).code).toBe(1000)
    const sent = await pushed!

    expect(received.bytes).toBe(PUSHED)
    expect(received.hex()).toBe(sent.hex())
    // Above the mark the daemon stops reading: at most the read that crossed it is held on top.
    expect(held.max).toBeLessThanOrEqual(HIGH_WATER + OWN_READ)
    expect(held.pauses).toBeGreaterThan(0)
  })

  it('a client that does not read while the target writes 4 KiB at a time: every byte arrives once it reads (small reads share one buffer and are copied)', async () => {
    let pushed: Promise<Digest> | undefined
    const target = await startTcpServer((socket) => {
      pushed = trickle(socket, 24 * MiB, 4 * KiB).then((digest) => {
        socket.end()
        return digest
      })
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port), { highWaterMarkBytes: 256 * KiB })
    const held = watchHeldBytes(server)
    // Listen before 'open': the first bytes can arrive with the handshake's answer.
    const ws = new WebSocket(server.url(), { perMessageDeflate: false })
    d.add(() => ws.terminate())
    const received = new Digest()
    ws.on('message', (data: Buffer) => received.update(data))
    await once(ws, 'open')
    ws.pause()
    await held.firstPause()

    const wsClosed = closed(ws)
    ws.resume()
    expect((await wsClosed).code).toBe(1000)
    const sent = await pushed!
    expect(received.bytes).toBe(sent.bytes)
    expect(received.hex()).toBe(sent.hex())
  })

  it('the high-water mark is configurable: a 64 KiB mark holds under 64 KiB + one read', async () => {
    let pushed: Promise<Digest> | undefined
    const target = await startTcpServer((socket) => {
      pushed = pushRandom(socket, 32 * MiB).then((digest) => {
        socket.end()
        return digest
      })
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port), { highWaterMarkBytes: 64 * KiB })
    const held = watchHeldBytes(server)
    const received = new Digest()
    const ws = await openWs(d, server.url(), { beforeOpen: (w) => void hashInto(w, received) })
    ws.pause()
    await held.firstPause()
    ws.resume()
    await once(ws, 'close')
    expect(received.hex()).toBe((await pushed!).hex())
    expect(held.max).toBeLessThanOrEqual(64 * KiB + 128 * KiB)
  })
})
