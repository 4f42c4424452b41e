/**
 * Found by attacking the reused read buffers (issue 15): once the client is paused by the bytes queued
 * for the target (the high-water mark) instead of by Node's 16 KiB default, a client sending 1-byte
 * binary frames to a target that does not read made the daemon queue one write per payload byte: a
 * million writes (well over 100 MiB of bookkeeping) for a 1 MiB mark, per tunnel. Small slices of one
 * read are now joined into one write, so what a tunnel holds stays about the mark, whatever the frames.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createDisposer } from '../helpers/disposer.js'
import { RawWs } from '../helpers/raw-ws.js'
import { startTunnel } from '../helpers/tunnel.js'
import { tempDir } from '../helpers/tmp.js'
import net, { type Socket } from 'node:net'
import { join } from 'node:path'
import { hashIncoming } from '../helpers/peers.js'
import { Digest } from '../helpers/data.js'
import type { BackpressureEvent } from '../../src/events.js'

const d = createDisposer()
afterEach(() => d.run())

const MiB = 1024 * 1024

/** The collector, to measure what is retained rather than what is garbage. */
function collector(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

describe('tiny frames into a target that does not read', () => {
  it('the daemon holds about the high-water mark, not a write per byte, and every byte arrives', async () => {
    const gc = collector()
    // A unix socket target: its kernel buffers are small, so the daemon's own queue fills soon.
    const path = join(await tempDir(d), 'target.sock')
    const accepted: Socket[] = []
    const target = net.createServer((socket) => {
      socket.pause()
      accepted.push(socket)
    })
    target.listen(path)
    await once(target, 'listening')
    d.add(() => {
      for (const socket of accepted) socket.destroy()
      return new Promise<void>((resolve) => target.close(() => resolve()))
    })
    const server = await startTunnel(d, { kind: 'unix', path }, { highWaterMarkBytes: MiB })
    const ws = await RawWs.open(Number(new URL(server.url()).port))
    d.add(() => ws.socket.destroy())
    while (accepted.length === 0) await once(target, 'connection')
    const far = accepted[0]!

    // 2 MiB of payload in 1-byte frames (14 MiB on the wire), built before the baseline.
    const frames = 2 * MiB
    const wire = Buffer.alloc(frames * 7)
    const sent = new Digest()
    const payload = Buffer.alloc(frames)
    for (let i = 0; i < frames; i++) {
      payload[i] = (i * 31) & 0xff
      const at = i * 7
      wire[at] = 0x82 // FIN, binary
      wire[at + 1] = 0x81 // masked, 1 byte
      // mask key 0: the payload byte as it is
      wire[at + 6] = payload[i]!
    }
    sent.update(payload)
    gc()
    const before = process.memoryUsage().heapUsed

    const paused = new Promise<void>((resolve) => {
      const onEvent = (message: unknown) => {
        const event = message as BackpressureEvent
        if (event.direction === 'up' && event.paused) {
          unsubscribe('gangway:tunnel:backpressure', onEvent)
          resolve()
        }
      }
      subscribe('gangway:tunnel:backpressure', onEvent)
    })
    ws.socket.write(wire)
    await paused
    gc()
    const held = process.memoryUsage().heapUsed - before
    // A write per byte retained over 100 MiB here; joined, the mark and its bookkeeping are a few MiB.
    expect(held).toBeLessThan(24 * MiB)
    expect(server.stats().heldBytes).toBeLessThanOrEqual(MiB + 256 * 1024)

    const received = hashIncoming(far)
    far.resume()
    ws.close(1000)
    const got = await received
    expect(got.bytes).toBe(frames)
    expect(got.hex()).toBe(sent.hex())
  })
})
