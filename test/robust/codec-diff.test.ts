/**
 * Differential fuzzing of the streaming codec against ws: the same random client frame streams (valid and
 * broken: any opcode, RSV bits, masks, lengths in every encoding, fragments with control frames between
 * them, close codes and reasons, text that is and is not UTF-8), split at the same random read boundaries,
 * go into ws's WebSocket (the reference) and into StreamWebSocket, each on an in-memory socket. Both must
 * write the same bytes back (pongs, the close frame with its code and reason), raise the same error, and
 * deliver the same messages, except that the streaming codec may already have delivered the start of a
 * binary message that ws still held when the stream stopped (it relays slices, ws whole messages).
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { WebSocket } from 'ws'
import { StreamWebSocket } from '../../src/relay/stream-socket.js'
import { encodeFrame, memorySocket, splitAt, type FrameSpec } from '../helpers/frames.js'
import { scale } from './scale.js'

const LIMIT = 1024 * 1024
const EMPTY = Buffer.alloc(0)

interface Outcome {
  written: Buffer
  messages: Array<{ binary: boolean; data: Buffer }>
  error: string | undefined
  closeCode: number | undefined
}

type Run = (chunks: Buffer[], end: boolean) => Promise<Outcome>

const runReference: Run = async (chunks, end) => {
  const { socket, written } = memorySocket()
  // As WebSocketServer builds it (its defaults): ws's server-side constructor, then setSocket after the 101.
  const ws = new WebSocket(null as unknown as string, undefined, {
    autoPong: true,
    maxPendingAutoPongs: 60,
    closeTimeout: 30_000,
  } as object)
  const messages: Outcome['messages'] = []
  let error: string | undefined
  ws.on('message', (data: Buffer, binary: boolean) =>
    messages.push({ binary, data: Buffer.from(data) }),
  )
  ws.on('error', (err: Error & { code?: string }) => (error ??= err.code))
  ;(ws as unknown as { setSocket(s: unknown, h: Buffer, o: object): void }).setSocket(
    socket,
    EMPTY,
    {
      allowSynchronousEvents: true,
      maxPayload: LIMIT,
      maxFragments: 16 * 1024,
      maxBufferedChunks: 256 * 1024,
      skipUTF8Validation: false,
    },
  )
  return drive(socket, ws, chunks, end, () => ({
    written: Buffer.concat(written),
    messages,
    error,
  }))
}

const runStream: Run = async (chunks, end) => {
  const { socket, written } = memorySocket()
  const ws = new StreamWebSocket(socket, EMPTY, '', {
    maxTextBytes: LIMIT,
    maxTextFragments: 16 * 1024,
    maxPendingPongs: 60,
    closeTimeoutMs: 30_000,
  })
  const messages: Outcome['messages'] = []
  let error: string | undefined
  ws.on('message', (data: Buffer, binary: boolean, first?: boolean) => {
    const last = messages.at(-1)
    if (binary && first === false && last !== undefined)
      last.data = Buffer.concat([last.data, data])
    else messages.push({ binary, data: Buffer.from(data) })
  })
  ws.on('error', (err: Error & { code?: string }) => (error ??= err.code))
  return drive(socket, ws, chunks, end, () => ({
    written: Buffer.concat(written),
    messages,
    error,
  }))
}

async function drive(
  socket: ReturnType<typeof memorySocket>['socket'],
  ws: { on(e: 'close', l: (code: number) => void): unknown },
  chunks: Buffer[],
  end: boolean,
  result: () => Omit<Outcome, 'closeCode'>,
): Promise<Outcome> {
  let closeCode: number | undefined
  const closed = new Promise<void>((resolve) =>
    ws.on('close', (code: number) => {
      closeCode = code
      resolve()
    }),
  )
  for (const chunk of chunks) {
    socket.push(Buffer.from(chunk)) // each side unmasks in place: give each its own copy
    await new Promise(setImmediate)
  }
  if (end) socket.push(null)
  await new Promise(setImmediate)
  const outcome = result()
  if (!end) socket.destroy()
  await closed
  return { ...outcome, closeCode }
}

// --- generators -----------------------------------------------------------------------------------------
const maskKey = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)) },
  { weight: 1, arbitrary: fc.constant([0, 0, 0, 0] as [number, number, number, number]) },
)
const bytesOf = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a))
const payload = fc.oneof(
  { weight: 10, arbitrary: bytesOf(0, 24) },
  { weight: 3, arbitrary: bytesOf(120, 130) },
  { weight: 2, arbitrary: bytesOf(65530, 65545) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 65536, max: 70000 }).map((n) => Buffer.alloc(n, n & 0xff)),
  },
)
const utf8 = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => Buffer.from(s, 'utf8'))
const closeBody = fc.oneof(
  fc.constant(EMPTY),
  bytesOf(1, 1),
  fc
    .tuple(
      fc.oneof(
        fc.constantFrom(1000, 1001, 1002, 1003, 1007, 1008, 1011, 3000, 4000, 4999),
        fc.nat(65535),
      ),
      fc.oneof(
        utf8.map((b) => b.subarray(0, 100)),
        bytesOf(0, 8),
      ),
    )
    .map(([code, reason]) => {
      const b = Buffer.alloc(2 + reason.length)
      b.writeUInt16BE(code, 0)
      reason.copy(b, 2)
      return b
    }),
)
const opcode = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom(0x0, 0x1, 0x2) },
  { weight: 4, arbitrary: fc.constantFrom(0x8, 0x9, 0xa) },
  { weight: 1, arbitrary: fc.nat(15) },
)
const frame: fc.Arbitrary<FrameSpec> = fc
  .record({
    fin: fc.oneof(
      { weight: 3, arbitrary: fc.constant(true) },
      { weight: 2, arbitrary: fc.constant(false) },
    ),
    rsv: fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(7) }),
    opcode,
    masked: fc.oneof(
      { weight: 30, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    mask: maskKey,
    lengthForm: fc.oneof(
      { weight: 8, arbitrary: fc.constant('min' as const) },
      { weight: 1, arbitrary: fc.constantFrom('16' as const, '64' as const) },
    ),
    data: payload,
    text: fc.oneof(utf8, bytesOf(0, 12)),
    close: closeBody,
  })
  .map(({ data, text, close, ...f }) => ({
    ...f,
    payload:
      f.opcode === 0x1 || f.opcode === 0x0
        ? data.length > 200
          ? data
          : text
        : f.opcode === 0x8
          ? close
          : f.opcode >= 0x8
            ? data.subarray(0, 125)
            : data,
  }))
/** A frame header that claims more than 2^53 − 1 bytes (ws answers 1009), or a few random bytes. */
const oddTail = fc.oneof(
  fc.constant(Buffer.from([0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3, 4])),
  bytesOf(1, 6),
)

const stream = fc
  .record({
    frames: fc.array(frame, { minLength: 1, maxLength: 10 }),
    tail: fc.option(oddTail, { freq: 8 }),
    cuts: fc.array(fc.nat(200_000), { maxLength: 12 }),
    smallCuts: fc.array(fc.nat(40), { maxLength: 6 }),
    end: fc.boolean(),
  })
  .map(({ frames, tail, cuts, smallCuts, end }) => {
    const bytes = Buffer.concat([...frames.map(encodeFrame), ...(tail === null ? [] : [tail])])
    return { frames, bytes, chunks: splitAt(bytes, [...cuts, ...smallCuts]), end }
  })

describe('the streaming codec behaves as ws does (differential)', () => {
  it(
    'same bytes back, same error, same messages (binary ones may start early), same close',
    async () => {
      await fc.assert(
        fc.asyncProperty(stream, async ({ chunks, end }) => {
          const reference = await runReference(chunks, end)
          const subject = await runStream(chunks, end)
          expect(subject.error).toBe(reference.error)
          expect(subject.written.toString('hex')).toBe(reference.written.toString('hex'))
          expect(subject.closeCode).toBe(reference.closeCode)
          const n = reference.messages.length
          expect(subject.messages.slice(0, n)).toEqual(reference.messages)
          const extra = subject.messages.slice(n)
          expect(extra.length).toBeLessThanOrEqual(1)
          if (extra.length === 1) expect(extra[0]!.binary).toBe(true)
        }),
        { numRuns: scale(400, 10_000) },
      )
    },
    scale(120_000, 1_800_000),
  )
})
