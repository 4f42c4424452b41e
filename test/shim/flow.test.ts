import { afterEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createDisposer } from '../helpers/disposer.js'
import { Digest } from '../helpers/data.js'
import { hashIncoming, pushRandom } from '../helpers/peers.js'
import { startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { connectVia, RecordingWebSocket } from '../helpers/shim.js'

const KiB = 1024
const MiB = 1024 * KiB
const HWM = 256 * KiB

const d = createDisposer()
afterEach(() => d.run())

/** Resolves at the daemon's first backpressure pause in `direction`. */
function firstPause(direction: 'up' | 'down'): Promise<void> {
  return new Promise((resolve) => {
    const onEvent = (m: unknown) => {
      const event = m as { direction: string; paused: boolean }
      if (event.direction !== direction || !event.paused) return
      unsubscribe('gangway:tunnel:backpressure', onEvent)
      resolve()
    }
    subscribe('gangway:tunnel:backpressure', onEvent)
    d.add(() => void unsubscribe('gangway:tunnel:backpressure', onEvent))
  })
}

describe('flow control through the shim', () => {
  it('send backpressure: against a target that does not read, the daemon holds at most its window and writes wait', async () => {
    const target = await startTcpServer((s) => s.pause())
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port), { highWaterMarkBytes: MiB })
    const socket = connectVia(d, server.url(), { highWaterMark: HWM })
    await socket.opened
    const ws = RecordingWebSocket.last!
    const writer = socket.writable.getWriter()
    const total = 64 * MiB
    const pool = randomBytes(4 * MiB)
    const sent = new Digest()
    let accepted = 0
    let maxInShim = 0
    const writing = (async () => {
      for (let at = 0; at < total; at += 16 * KiB) {
        const chunk = pool.subarray(at % pool.length, (at % pool.length) + 16 * KiB)
        sent.update(chunk)
        await writer.write(chunk)
        accepted += chunk.length
        maxInShim = Math.max(maxInShim, accepted - ws.bytesSent)
      }
      await writer.close()
    })()
    // The daemon stops granting once the kernel buffers and its window are full; the writer waits.
    await firstPause('up')
    const heldAtPause = server.stats().heldBytes
    expect(accepted).toBeLessThan(total / 2)
    const targetSocket = await target.accepted(0)
    const received = hashIncoming(targetSocket)
    targetSocket.resume()
    await writing
    expect((await received).hex()).toBe(sent.hex())
    expect(heldAtPause).toBeLessThanOrEqual(MiB + 64 * KiB)
    expect(maxInShim).toBeLessThanOrEqual(HWM + 16 * KiB)
  })

  it('receive backpressure: a reader that stops makes the daemon stop reading the target; unread bytes stay within the window', async () => {
    const total = 32 * MiB
    let pushed: Promise<Digest> | undefined
    const target = await startTcpServer((s) => void (pushed = pushRandom(s, total)))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url(), { highWaterMark: HWM })
    await socket.opened
    const ws = RecordingWebSocket.last!
    // Not reading: the daemon may send exactly the window, no more.
    await ws.until(() => ws.bytesReceived === HWM)
    expect(server.stats().heldBytes).toBeLessThanOrEqual(HWM)
    const got = new Digest()
    let consumed = 0
    let maxUnread = 0
    ws.on('message', () => (maxUnread = Math.max(maxUnread, ws.bytesReceived - consumed)))
    const reader = socket.readable.getReader()
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      consumed += r.value.byteLength
      got.update(Buffer.from(r.value))
      if (consumed === total) break
    }
    expect(got.hex()).toBe((await pushed!).hex())
    expect(maxUnread).toBeLessThanOrEqual(HWM)
  })

  it('moves 256 MiB each way through an echo target, checksummed', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = connectVia(d, server.url())
    const total = 256 * MiB
    const pool = randomBytes(8 * MiB + 13)
    const sent = new Digest()
    const writer = socket.writable.getWriter()
    const writing = (async () => {
      for (let at = 0; at < total;) {
        const size = Math.min(total - at, 1 + ((at * 7919) % (192 * KiB)))
        const offset = at % (pool.length - size)
        const chunk = pool.subarray(offset, offset + size)
        sent.update(chunk)
        await writer.write(chunk)
        at += size
      }
    })()
    const got = new Digest()
    let received = 0
    const reader = socket.readable.getReader()
    while (received < total) {
      const r = await reader.read()
      if (r.done) break
      received += r.value.byteLength
      got.update(Buffer.from(r.value))
    }
    await writing
    expect(received).toBe(total)
    expect(got.hex()).toBe(sent.hex())
    await writer.close()
  })
})
