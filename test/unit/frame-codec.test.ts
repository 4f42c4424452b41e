import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { FrameMask, unmaskWords } from '../../src/relay/frame-mask.js'
import { FrameReceiver, type FrameError, type FrameSink } from '../../src/relay/frame-receiver.js'
import { closePayload, frameHeader } from '../../src/relay/frame-sender.js'
import { encodeFrame, splitAt } from '../helpers/frames.js'

function xor(data: Buffer, mask: number[], phase: number): Buffer {
  return Buffer.from(data.map((b, i) => b ^ mask[(phase + i) & 3]!))
}

describe('frame-mask', () => {
  it('unmasks any slice at any payload phase and memory alignment, native or word-wise', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)),
        fc.nat(7),
        fc.nat(1000),
        (bytes, mask, misalign, phase) => {
          const backing = Buffer.alloc(bytes.length + 8)
          const data = backing.subarray(misalign & 7, (misalign & 7) + bytes.length)
          data.set(bytes)
          const expected = xor(Buffer.from(bytes), mask, phase)
          const m = new FrameMask()
          m.set(Buffer.from(mask), 0)
          const a = Buffer.from(data)
          m.unmask(a, phase)
          expect(a.equals(expected)).toBe(true)
          const rotated = Buffer.from([0, 1, 2, 3].map((i) => mask[(phase + i) & 3]!))
          unmaskWords(data, rotated)
          expect(data.equals(expected)).toBe(true)
        },
      ),
    )
  })
})

describe('frame-sender', () => {
  it.each([
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [2 ** 32 + 5, 10],
  ])('a %i-byte payload gets a %i-byte header', (length, size) => {
    const header = frameHeader(0x2, length)
    expect(header.length).toBe(size)
    expect(header[0]).toBe(0x82)
    if (size === 4) expect(header.readUInt16BE(2)).toBe(length)
    if (size === 10) expect(Number(header.readBigUInt64BE(2))).toBe(length)
  })
})

describe('close payload', () => {
  it('cuts a long reason to 123 bytes at a character boundary, so the frame stays valid', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (reason) => {
        const payload = closePayload(1011, reason)
        expect(payload.length).toBeLessThanOrEqual(125)
        expect(payload.readUInt16BE(0)).toBe(1011)
        expect(reason.startsWith(payload.subarray(2).toString('utf8'))).toBe(true)
      }),
    )
  })
})

function collect(limits = { maxTextBytes: 0, maxTextFragments: 0 }) {
  const got = {
    slices: [] as Buffer[],
    firsts: [] as boolean[],
    texts: [] as string[],
    pings: 0,
    close: undefined as number | undefined,
    error: undefined as FrameError | undefined,
  }
  const sink: FrameSink = {
    binary: (d, first) => (got.slices.push(Buffer.from(d)), got.firsts.push(first)),
    text: (m) => got.texts.push(m.toString()),
    ping: () => got.pings++,
    pong: () => {},
    close: (code) => (got.close = code),
    error: (err) => (got.error = err),
  }
  return { got, receiver: new FrameReceiver(sink, limits) }
}

const frame = (opcode: number, payload: Buffer, fin = true) =>
  encodeFrame({ fin, rsv: 0, opcode, payload, masked: true, mask: [1, 2, 3, 4], lengthForm: 'min' })

describe('frame-receiver', () => {
  it('streams a 20 MiB binary message read by read: no slice is larger than its read, nothing is assembled', () => {
    const { got, receiver } = collect({ maxTextBytes: 1024, maxTextFragments: 16 })
    const payload = Buffer.alloc(20 * 1024 * 1024)
    for (let i = 0; i < payload.length; i += 4096) payload[i] = (i >> 12) & 0xff
    const wire = frame(0x2, payload)
    const READ = 65536
    for (let at = 0; at < wire.length; at += READ) receiver.write(wire.subarray(at, at + READ))
    expect(got.error).toBeUndefined()
    expect(Math.max(...got.slices.map((s) => s.length))).toBeLessThanOrEqual(READ)
    expect(got.firsts.filter(Boolean)).toHaveLength(1)
    expect(Buffer.concat(got.slices).equals(payload)).toBe(true)
  })

  it('parses headers split anywhere, with a ping between fragments', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(400), { maxLength: 30 }), (cuts) => {
        const { got, receiver } = collect()
        const wire = Buffer.concat([
          frame(0x2, Buffer.alloc(300, 1), false),
          frame(0x9, Buffer.from('hi')),
          frame(0x0, Buffer.alloc(70000, 2)),
          frame(0x1, Buffer.from('héllo')),
          frame(0x8, Buffer.from([0x03, 0xe8])),
        ])
        for (const chunk of splitAt(wire, cuts)) receiver.write(chunk)
        expect(
          Buffer.concat(got.slices).equals(
            Buffer.concat([Buffer.alloc(300, 1), Buffer.alloc(70000, 2)]),
          ),
        ).toBe(true)
        expect(got.pings).toBe(1)
        expect(got.texts).toEqual(['héllo'])
        expect(got.close).toBe(1000)
      }),
    )
  })

  it('keeps connections apart: interleaved reads of receivers with different masks, control payloads whole or split', () => {
    // The rotated mask key is one buffer shared by every receiver, and a control payload that came whole is
    // a view into its read: neither may leak one connection's bytes into another's.
    const maskArb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255))
    const payloadArb = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a))
    const pingArb = fc.uint8Array({ maxLength: 125 }).map((a) => Buffer.from(a))
    fc.assert(
      fc.property(
        fc.array(fc.tuple(maskArb, payloadArb, pingArb, fc.array(fc.nat(400), { maxLength: 8 })), {
          minLength: 2,
          maxLength: 4,
        }),
        fc.array(fc.nat(3), { maxLength: 60 }),
        (conns, order) => {
          const parties = conns.map(([mask, payload, ping, cuts]) => {
            const got = { binary: [] as Buffer[], pings: [] as Buffer[], close: 0 }
            const receiver = new FrameReceiver(
              {
                binary: (d) => got.binary.push(Buffer.from(d)),
                text: () => {},
                ping: (p) => got.pings.push(Buffer.from(p)),
                pong: () => {},
                close: (code) => (got.close = code),
                error: (err) => {
                  throw err
                },
              },
              { maxTextBytes: 0, maxTextFragments: 0 },
            )
            const spec = { fin: true, rsv: 0, masked: true, mask, lengthForm: 'min' } as const
            const wire = Buffer.concat([
              encodeFrame({ ...spec, opcode: 0x2, payload }),
              encodeFrame({ ...spec, opcode: 0x9, payload: ping }),
              encodeFrame({ ...spec, opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) }),
            ])
            return { got, receiver, reads: splitAt(wire, cuts), payload, ping }
          })
          // Feed the reads interleaved in the generated order, then whatever is left, in turn.
          for (const pick of [
            ...order,
            ...parties.flatMap((_, i) => Array.from({ length: 20 }, () => i)),
          ]) {
            const party = parties[pick % parties.length]!
            const read = party.reads.shift()
            if (read !== undefined) party.receiver.write(Buffer.from(read))
          }
          for (const { got, payload, ping } of parties) {
            expect(Buffer.concat(got.binary).equals(payload)).toBe(true)
            expect(got.pings).toHaveLength(1)
            expect(got.pings[0]!.equals(ping)).toBe(true)
            expect(got.close).toBe(1000)
          }
        },
      ),
    )
  })

  it.each([
    [
      'a text message above the limit',
      frame(0x1, Buffer.alloc(11, 0x61)),
      'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH',
      1009,
    ],
    ['invalid UTF-8 in text', frame(0x1, Buffer.from([0xc3])), 'WS_ERR_INVALID_UTF8', 1007],
    ['an unmasked frame', Buffer.from([0x82, 0x01, 0x00]), 'WS_ERR_EXPECTED_MASK', 1002],
    [
      'RSV1 without an extension',
      Buffer.from([0xc2, 0x80, 0, 0, 0, 0]),
      'WS_ERR_UNEXPECTED_RSV_1',
      1002,
    ],
    ['a continuation with no message', frame(0x0, Buffer.from('x')), 'WS_ERR_INVALID_OPCODE', 1002],
    [
      'a ping of 126 bytes',
      Buffer.from([0x89, 0xfe, 0x00, 0x7e]),
      'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH',
      1002,
    ],
    [
      'a close code of 1005',
      frame(0x8, Buffer.from([0x03, 0xed])),
      'WS_ERR_INVALID_CLOSE_CODE',
      1002,
    ],
    [
      'a length above 2^53 − 1',
      Buffer.from([0x82, 0xff, 0, 0x20, 0, 0, 0, 0, 0, 0]),
      'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
      1009,
    ],
  ])('%s: %s, close %i', (_what, wire, code, closeCode) => {
    const { got, receiver } = collect({ maxTextBytes: 10, maxTextFragments: 4 })
    receiver.write(wire)
    expect(got.error?.code).toBe(code)
    expect(got.error?.closeCode).toBe(closeCode)
  })

  it('binary data has no size limit; text has (maxTextBytes)', () => {
    const { got, receiver } = collect({ maxTextBytes: 10, maxTextFragments: 4 })
    receiver.write(frame(0x2, Buffer.alloc(1000)))
    expect(got.error).toBeUndefined()
    expect(Buffer.concat(got.slices).length).toBe(1000)
  })
})
