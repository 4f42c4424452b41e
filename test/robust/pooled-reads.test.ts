/**
 * The reused read buffers (relay/read-buffers) are only safe if a buffer is never read into while a
 * write still needs its bytes. These drive a real daemon over loopback with random traffic shaped to make
 * writes lag (targets and clients that stall for random turns of the event loop, or until the daemon
 * reports backpressure, so that its writes are surely queued while it reads on; random message and write
 * sizes; both high-water marks) and assert the one invariant that matters: every byte accepted arrives,
 * in order, unchanged, in both directions.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { setImmediate as tick } from 'node:timers/promises'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer } from '../helpers/tcp.js'
import { writeBytes } from '../helpers/delivery.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { RawWs } from '../helpers/raw-ws.js'
import { closed, openWs } from '../helpers/ws.js'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { BackpressureEvent } from '../../src/events.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const KiB = 1024
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A deterministic byte pattern per run (shifted bytes would not compare equal). */
function pattern(seed: number, length: number): Buffer {
  const bytes = writeBytes(seed, 0, length)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
}

/** A stall: that many turns of the event loop, or (-1) until the daemon pauses the other side. */
const stallArb = fc.oneof(fc.nat({ max: 50 }), fc.integer({ min: 100, max: 400 }), fc.constant(-1))

/** The daemon's backpressure as last reported, per direction, and who waits for the next pause. */
const paused = { up: false, down: false }
const pauseWaiters: Array<{ direction: 'up' | 'down'; wake: () => void }> = []
function onBackpressure(message: unknown): void {
  const event = message as BackpressureEvent
  paused[event.direction] = event.paused
  if (!event.paused) return
  for (const waiter of pauseWaiters.filter((w) => w.direction === event.direction)) {
    pauseWaiters.splice(pauseWaiters.indexOf(waiter), 1)
    waiter.wake()
  }
}
beforeAll(() => subscribe('gangway:tunnel:backpressure', onBackpressure))
afterAll(() => unsubscribe('gangway:tunnel:backpressure', onBackpressure))

/**
 * Waits out one stall. -1 waits until the daemon pauses the sender in `direction` (its writes are then
 * queued beyond the mark; at once if it already has), or for `done` (the sender has sent everything).
 */
async function stall(
  turns: number,
  direction: 'up' | 'down',
  done: Promise<unknown>,
): Promise<void> {
  if (turns >= 0) {
    for (let t = 0; t < turns; t++) await tick()
    return
  }
  if (paused[direction]) return
  await Promise.race([new Promise<void>((wake) => pauseWaiters.push({ direction, wake })), done])
}

/** Reads everything from `socket`, stalling after the i-th read as `stalls[i]` says. */
function readWithStalls(
  socket: Socket,
  stalls: number[],
  total: number,
  sendDone: Promise<unknown>,
): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  let i = 0
  return new Promise((resolve, reject) => {
    socket.on('error', reject)
    socket.on('data', (chunk: Buffer) => {
      parts.push(chunk)
      got += chunk.length
      if (got >= total) {
        resolve(Buffer.concat(parts))
        return
      }
      const turns = stalls[i++ % stalls.length]!
      if (turns === 0) return
      socket.pause()
      void stall(turns, 'up', sendDone).then(() => socket.resume())
    })
  })
}

const upload = fc.record({
  /** Message sizes: tiny to several reads long. */
  messages: fc.array(
    fc.oneof(fc.nat({ max: 200 }), fc.integer({ min: 32 * KiB, max: 1024 * KiB })),
    {
      minLength: 8,
      maxLength: 48,
    },
  ),
  /** Each message in fragments (continuation frames): up to 3, or many of 64 B to 4 KiB each. */
  fragments: fc.oneof(
    fc.integer({ min: 1, max: 3 }),
    fc.integer({ min: 64, max: 4096 }).map((n) => -n),
  ),
  /** The client's socket writes: the frame bytes cut into pieces of this size. */
  writeSize: fc.oneof(fc.constant(1 << 30), fc.integer({ min: 1000, max: 300 * KiB })),
  stalls: fc.array(stallArb, { minLength: 1, maxLength: 8 }),
  highWaterMark: fc.constantFrom(64 * KiB, 1024 * KiB),
  seed: fc.nat(),
})

const download = fc.record({
  writes: fc.array(
    fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 256 * KiB, max: 2048 * KiB })),
    { minLength: 16, maxLength: 48 },
  ),
  stalls: fc.array(stallArb, { minLength: 1, maxLength: 8 }),
  highWaterMark: fc.constantFrom(64 * KiB, 1024 * KiB),
  seed: fc.nat(),
})

describe('reused read buffers never lose, reorder or corrupt a byte', () => {
  it('upload: random frames and write sizes, a target that stalls', async () => {
    await fc.assert(
      fc.asyncProperty(upload, async (run) => {
        const total = run.messages.reduce((a, b) => a + b, 0)
        paused.up = paused.down = false
        const sent = pattern(run.seed, total)
        let received: Promise<Buffer> | undefined
        let sendDone: () => void = () => {}
        const allSent = new Promise<void>((resolve) => (sendDone = resolve))
        const target = await startTcpServer((socket) => {
          received = readWithStalls(socket, run.stalls, total, allSent)
        })
        d.add(() => target.close())
        const server = await startTunnel(d, tcpTarget(target.port), {
          highWaterMarkBytes: run.highWaterMark,
        })
        const ws = await RawWs.open(Number(new URL(server.url()).port))
        d.add(() => ws.socket.destroy())
        await target.accepted(0)

        const frames: Buffer[] = []
        let at = 0
        for (const size of run.messages) {
          const message = sent.subarray(at, at + size)
          at += size
          const piece =
            run.fragments < 0 ? -run.fragments : Math.max(1, Math.ceil(size / run.fragments))
          for (let from = 0, first = true; first || from < size; from += piece, first = false) {
            const last = from + piece >= size
            frames.push(
              ws.frame(first ? 0x2 : 0x0, message.subarray(from, from + piece), { fin: last }),
            )
          }
        }
        const wire = Buffer.concat(frames)
        for (let from = 0; from < wire.length; from += run.writeSize) {
          if (!ws.socket.write(wire.subarray(from, from + run.writeSize)))
            await once(ws.socket, 'drain')
        }
        sendDone()
        const got = total === 0 ? Buffer.alloc(0) : await received!
        expect(got.length).toBe(total)
        expect(sha(got)).toBe(sha(sent))
        ws.close(1000)
        expect(await ws.closeCode()).toBe(1000)
      }),
      { numRuns: scale(20, 200) },
    )
  })

  it('download: random target writes, a client that stalls', async () => {
    await fc.assert(
      fc.asyncProperty(download, async (run) => {
        const total = run.writes.reduce((a, b) => a + b, 0)
        paused.up = paused.down = false
        const sent = pattern(run.seed, total)
        let sendDone: () => void = () => {}
        const allSent = new Promise<void>((resolve) => (sendDone = resolve))
        const target = await startTcpServer((socket) => {
          void (async () => {
            let at = 0
            for (const size of run.writes) {
              if (!socket.write(sent.subarray(at, at + size))) await once(socket, 'drain')
              at += size
            }
            socket.end()
            sendDone()
          })()
        })
        d.add(() => target.close())
        const server = await startTunnel(d, tcpTarget(target.port), {
          highWaterMarkBytes: run.highWaterMark,
        })
        const parts: Buffer[] = []
        let i = 0
        const ws = await openWs(d, server.url(), {
          beforeOpen: (client) =>
            client.on('message', (data: Buffer) => {
              parts.push(data)
              const turns = run.stalls[i++ % run.stalls.length]!
              if (turns === 0) return
              client.pause()
              void stall(turns, 'down', allSent).then(() => client.resume())
            }),
        })
        const end = await closed(ws)
        expect(end.code).toBe(1000)
        const got = Buffer.concat(parts)
        expect(got.length).toBe(total)
        expect(sha(got)).toBe(sha(sent))
      }),
      { numRuns: scale(20, 200) },
    )
  })
})
