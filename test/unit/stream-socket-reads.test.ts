/**
 * StreamWebSocket switches a socket to reused read buffers on its first bulk read. If the consumer paused
 * it on that very read (the bridge does, when that read takes the target's queue over the high-water
 * mark), the pause must still hold after the switch: reads in that mode bypass the stream's flow, so a
 * pause that only stopped the flow would let the client push on without bound.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { setImmediate as tick } from 'node:timers/promises'
import { StreamWebSocket } from '../../src/relay/stream-socket.js'
import { encodeFrame } from '../helpers/frames.js'
import { createDisposer } from '../helpers/disposer.js'
import { connectedPair } from '../helpers/tcp.js'

const d = createDisposer()
afterEach(() => d.run())

const KiB = 1024

function binaryFrame(payload: Buffer): Buffer {
  return encodeFrame({
    fin: true,
    rsv: 0,
    opcode: 0x2,
    payload,
    masked: true,
    mask: [1, 2, 3, 4],
    lengthForm: 'min',
  })
}

describe('the switch to reused read buffers', () => {
  it('keeps a pause made on the read that triggered it: nothing more is read until resume()', async () => {
    const { client, accepted } = await connectedPair(d)
    const ws = new StreamWebSocket(accepted, Buffer.alloc(0), '', {
      maxTextBytes: 1024,
      maxTextFragments: 16,
      maxPendingPongs: 60,
      closeTimeoutMs: 1000,
    })
    let received = 0
    ws.on('message', (data: Buffer) => (received += data.length))
    let reads = 0
    ws.setReadBatch({
      begin: () => {},
      // The first read is a bulk one: pause on it, as the bridge does above its mark.
      end: () => {
        if (reads++ === 0) ws.pause()
        return false
      },
      whenReleased: () => {},
      queueBytes: 1024 * KiB,
    })
    // A first read of one 64 KiB frame, alone on the wire.
    client.write(binaryFrame(Buffer.alloc(64 * KiB, 1)))
    for (let turn = 0; turn < 100_000 && received === 0; turn++) await tick()
    expect(ws.isPaused).toBe(true)
    const atPause = received

    // Then 4 MiB more.
    const more = Buffer.concat(
      Array.from({ length: 64 }, () => binaryFrame(Buffer.alloc(64 * KiB, 2))),
    )
    // The kernel takes what fits into the paused socket's buffers; nothing of it may be read yet.
    client.write(more)
    for (let turn = 0; turn < 5_000 && received === atPause; turn++) await tick()
    expect(received).toBe(atPause)

    ws.resume()
    const total = 65 * 64 * KiB
    for (let turn = 0; turn < 100_000 && received < total; turn++) await tick()
    expect(received).toBe(total)
  })
})
