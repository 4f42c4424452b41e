/**
 * Once a consumer brackets its reads (`setReadBatch`), StreamWebSocket reads the socket into buffers of
 * its own choosing: small reads into the buffer every socket shares (copied out at once), bulk reads into
 * reused slabs, lent to the consumer while it holds their slices. Reads in that mode bypass the stream's
 * flow, so a pause must stop the socket's handle itself, and bytes that arrived before the switch must
 * still come first. And whatever the read boundaries and however the sockets interleave, the bytes a
 * consumer holds are the bytes the client sent, until it gives them back.
 */
import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { setImmediate as tick } from 'node:timers/promises'
import { StreamWebSocket } from '../../src/relay/stream-socket.js'
import { encodeFrame } from '../helpers/frames.js'
import { createDisposer } from '../helpers/disposer.js'
import { connectedPair } from '../helpers/tcp.js'

const d = createDisposer()
afterEach(() => d.run())

const KiB = 1024
const OPTIONS = {
  maxTextBytes: 1024,
  maxTextFragments: 16,
  maxPendingPongs: 60,
  closeTimeoutMs: 1000,
}

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

describe('reads into buffers the codec supplies', () => {
  it('keeps a pause made on a bulk read: nothing more is read until resume()', async () => {
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

  it('reads small messages into the shared buffer, not into a fresh buffer from the stream per read', async () => {
    const { client, accepted } = await connectedPair(d)
    const ws = new StreamWebSocket(accepted, Buffer.alloc(0), '', OPTIONS)
    const got: Buffer[] = []
    ws.on('message', (data: Buffer) => got.push(Buffer.from(data)))
    ws.setReadBatch({ begin() {}, end: () => false, whenReleased() {}, queueBytes: 1024 * KiB })
    // A second 'data' listener sees every read that still goes through the stream: none may.
    let throughStream = 0
    accepted.on('data', (chunk: Buffer) => (throughStream += chunk.length))
    for (let i = 0; i < 20; i++) {
      client.write(binaryFrame(Buffer.alloc(64, i)))
      for (let turn = 0; turn < 100_000 && got.length <= i; turn++) await tick()
    }
    expect(got.map((m) => m[0])).toEqual(Array.from({ length: 20 }, (_, i) => i))
    expect(throughStream).toBe(0)
  })

  it('keeps a pause made before the switch, and delivers bytes that came before it first', async () => {
    const { client, accepted } = await connectedPair(d)
    const early = binaryFrame(Buffer.alloc(100, 7))
    const ws = new StreamWebSocket(accepted, early, '', OPTIONS)
    const got: Buffer[] = []
    ws.on('message', (data: Buffer) => got.push(Buffer.from(data)))
    ws.pause() // as the bridge pauses a client whose target is not writable yet
    ws.setReadBatch({ begin() {}, end: () => false, whenReleased() {}, queueBytes: 1024 * KiB })
    client.write(binaryFrame(Buffer.alloc(64 * KiB, 8)))
    for (let turn = 0; turn < 5_000; turn++) await tick()
    expect(got).toEqual([])

    ws.resume()
    for (let turn = 0; turn < 100_000 && Buffer.concat(got).length < 100 + 64 * KiB; turn++)
      await tick()
    const all = Buffer.concat(got)
    expect(all.length).toBe(100 + 64 * KiB)
    expect(all.subarray(0, 100).every((b) => b === 7)).toBe(true)
    expect(all.subarray(100).every((b) => b === 8)).toBe(true)
  })

  it("delivers a frame that came with the client's FIN before the switch, then closes", async () => {
    const { client, accepted } = await connectedPair(d)
    const ws = new StreamWebSocket(accepted, Buffer.alloc(0), '', OPTIONS)
    const got: Buffer[] = []
    ws.on('message', (data: Buffer) => got.push(Buffer.from(data)))
    const closed = once(ws, 'close')
    accepted.pause() // hold the bytes and the FIN in the stream until the switch
    client.end(binaryFrame(Buffer.alloc(300, 9)))
    await once(accepted, 'readable')
    for (let turn = 0; turn < 1_000; turn++) await tick()
    ws.setReadBatch({ begin() {}, end: () => false, whenReleased() {}, queueBytes: 1024 * KiB })
    ws.resume()
    await closed
    expect(Buffer.concat(got)).toEqual(Buffer.alloc(300, 9))
  })

  it('hands the consumer exactly the bytes sent, on sockets whose small and bulk reads interleave', async () => {
    // Two sockets share one process's read buffer; each consumer holds the slices of its reads for a
    // random while (as the bridge holds a write the target did not take at once) before copying them
    // out and giving them back. Payloads mix tiny frames (shared-buffer reads) with bulk ones (slabs).
    const sizes = fc.array(
      fc.oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 30 * KiB, max: 300 * KiB })),
      { minLength: 1, maxLength: 12 },
    )
    await fc.assert(
      fc.asyncProperty(
        fc.tuple(sizes, sizes),
        fc.array(fc.integer({ min: 1, max: 70 * KiB }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        async ([sizesA, sizesB], splits, holdTurns) => {
          const pairs = await Promise.all([connectedPair(d), connectedPair(d)])
          const results = await Promise.all(
            pairs.map(({ client, accepted }, i) =>
              relayOnce(client, accepted, i === 0 ? sizesA : sizesB, splits, holdTurns),
            ),
          )
          for (const { sent, received } of results) expect(received.equals(sent)).toBe(true)
        },
      ),
      { numRuns: Number(process.env.GANGWAY_FUZZ_RUNS ?? 15) },
    )
  }, 120_000)
})

/**
 * Sends frames of `sizes` (each payload a distinct byte pattern) in writes of `splits` bytes, and collects
 * what a consumer that holds its slices for `holdTurns` event-loop turns copies out.
 */
async function relayOnce(
  client: Socket,
  accepted: Socket,
  sizes: number[],
  splits: number[],
  holdTurns: number,
): Promise<{ sent: Buffer; received: Buffer }> {
  const payloads = sizes.map((n, i) => {
    const payload = Buffer.allocUnsafe(n)
    for (let j = 0; j < n; j++) payload[j] = (j * 31 + i * 7 + (j >> 8)) & 0xff
    return payload
  })
  const sent = Buffer.concat(payloads)
  const wire = Buffer.concat(payloads.map(binaryFrame))
  const ws = new StreamWebSocket(accepted, Buffer.alloc(0), '', OPTIONS)
  const out: Buffer[] = []
  let outBytes = 0
  let held: Buffer[] = []
  const releases: Array<() => void> = []
  function copyOut(): void {
    for (const slice of held) {
      out.push(Buffer.from(slice))
      outBytes += slice.length
    }
    held = []
    for (const release of releases.splice(0)) release()
  }
  ws.on('message', (data: Buffer) => held.push(data))
  ws.setReadBatch({
    begin() {},
    end() {
      if (held.length === 0) return false
      if (holdTurns === 0) {
        copyOut()
        return false
      }
      void waitTurns(holdTurns).then(copyOut)
      return true
    },
    whenReleased: (done) => releases.push(done),
    queueBytes: 1024 * KiB,
  })
  // At most 400 cut writes (one event-loop turn each), then the rest at once.
  for (let at = 0, i = 0; at < wire.length; i++) {
    const end = i < 400 ? Math.min(wire.length, at + splits[i % splits.length]!) : wire.length
    if (!client.write(wire.subarray(at, end))) await once(client, 'drain')
    at = end
    await tick()
  }
  for (let turn = 0; turn < 200_000 && outBytes < sent.length; turn++) await tick()
  copyOut()
  // The client goes first: ending the server side first could reset a client with bytes still unread.
  client.destroy()
  ws.terminate()
  return { sent, received: Buffer.concat(out) }
}

async function waitTurns(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await tick()
}
