/**
 * What Autobahn|Testsuite's cases 1-7 and 9 check, run against the daemon over real sockets (Autobahn itself
 * needs Docker or Python 2, neither available here). The daemon relays to an echo target, so an "echo"
 * comes back as the same bytes in binary frames (the target speaks TCP, not WebSocket). Numbers in the test
 * names are Autobahn's case numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { RawWs } from '../helpers/raw-ws.js'
import { startEchoTunnel } from '../helpers/tunnel.js'

const d = createDisposer()
let port: number
beforeAll(async () => {
  const { server } = await startEchoTunnel(d)
  port = (server.address() as { port: number }).port
})
afterAll(() => d.run())

const TEXT = 0x1
const BINARY = 0x2
const CLOSE = 0x8
const PING = 0x9
const PONG = 0xa
const KiB = 1024
const MiB = 1024 * KiB

async function open(): Promise<RawWs> {
  const ws = await RawWs.open(port)
  d.add(() => ws.socket.destroy())
  return ws
}

function pattern(length: number, seed = 1): Buffer {
  const b = Buffer.alloc(length)
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed + (i >> 8)) & 0xff
  return b
}

/** Sends `bytes`, expects the same bytes back, then a clean close (1000 echoed). */
async function expectEcho(ws: RawWs, bytes: Buffer, sent: Buffer[], chunk?: number): Promise<void> {
  const wire = Buffer.concat(sent)
  if (chunk === undefined) ws.send(wire)
  else await ws.sendInChunks(wire, chunk)
  expect((await ws.echoed(bytes.length)).equals(bytes)).toBe(true)
  ws.close(1000)
  expect(await ws.closeCode()).toBe(1000)
}

async function expectClose(ws: RawWs, wire: Buffer, code: number): Promise<void> {
  ws.send(wire)
  expect(await ws.closeCode()).toBe(code)
}

describe('1 framing: text and binary of every length encoding, whole and in small writes', () => {
  for (const [opcode, kind] of [
    [TEXT, 'text'],
    [BINARY, 'binary'],
  ] as const) {
    for (const length of [0, 125, 126, 127, 128, 65535, 65536]) {
      it(`1.${opcode}: ${kind} of ${length} bytes`, async () => {
        const ws = await open()
        const payload = opcode === TEXT ? Buffer.alloc(length, 0x2a) : pattern(length)
        await expectEcho(ws, payload, [ws.frame(opcode, payload)])
      })
    }
    it(`1.${opcode}.8: ${kind} of 65536 bytes in writes of 997`, async () => {
      const ws = await open()
      const payload = opcode === TEXT ? Buffer.alloc(65536, 0x2a) : pattern(65536)
      await expectEcho(ws, payload, [ws.frame(opcode, payload)], 997)
    })
  }
})

describe('2 pings and pongs', () => {
  it.each([
    ['2.1 empty', Buffer.alloc(0)],
    ['2.2 text', Buffer.from('Hello, world!')],
    ['2.3 binary', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])],
    ['2.4 125 bytes', pattern(125)],
  ])('%s ping is answered with a pong of the same payload', async (_what, payload) => {
    const ws = await open()
    ws.send(ws.frame(PING, payload))
    await ws.until(() => ws.pongs().length === 1)
    expect(ws.pongs()[0]!.equals(payload)).toBe(true)
    ws.close()
    expect(await ws.closeCode()).toBe(1000)
  })

  it('2.5 a ping of 126 bytes: 1002', async () => {
    const ws = await open()
    await expectClose(ws, ws.frame(PING, pattern(126)), 1002)
  })

  it('2.6 a 125-byte ping written a byte at a time is answered', async () => {
    const ws = await open()
    await ws.sendInChunks(ws.frame(PING, pattern(125)), 1)
    await ws.until(() => ws.pongs().length === 1)
    expect(ws.pongs()[0]!.equals(pattern(125))).toBe(true)
  })

  it('2.7-2.9 unsolicited pongs are ignored; a ping after them is answered', async () => {
    const ws = await open()
    ws.send(Buffer.concat([ws.frame(PONG, ''), ws.frame(PONG, 'unsolicited'), ws.frame(PING, 'x')]))
    await ws.until(() => ws.pongs().length === 1)
    expect(ws.pongs()[0]!.toString()).toBe('x')
    ws.close()
    expect(await ws.closeCode()).toBe(1000)
  })

  it('2.10-2.11 ten pings in a row, whole and byte by byte, get ten pongs', async () => {
    const ws = await open()
    const pings = Array.from({ length: 10 }, (_, i) => ws.frame(PING, `ping ${i}`))
    ws.send(Buffer.concat(pings))
    await ws.sendInChunks(Buffer.concat(pings), 1)
    await ws.until(() => ws.pongs().length === 20)
    const once = Array.from({ length: 10 }, (_, i) => `ping ${i}`)
    expect(ws.pongs().map(String)).toEqual([...once, ...once])
  })
})

describe('3 reserved bits: 1002, after what came before them', () => {
  it.each([
    ['3.1 RSV1 on text', TEXT, 4],
    ['3.2 RSV2 on text after a valid text', TEXT, 2],
    ['3.3 RSV3 on text after a valid text', TEXT, 1],
    ['3.4 RSV1+RSV2 on text', TEXT, 6],
    ['3.5 RSV1+RSV3 on binary', BINARY, 5],
    ['3.6 RSV2+RSV3 on ping', PING, 3],
    ['3.7 all RSV on close', CLOSE, 7],
  ])('%s', async (_what, opcode, rsv) => {
    const ws = await open()
    ws.send(ws.frame(TEXT, 'Hello'))
    await ws.echoed(5)
    await expectClose(
      ws,
      ws.frame(opcode, opcode === CLOSE ? Buffer.from([3, 232]) : 'bad', { rsv }),
      1002,
    )
  })
})

describe('4 opcodes: reserved ones are 1002', () => {
  it.each([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])(
    'opcode %i (with and without payload)',
    async (opcode) => {
      for (const payload of ['', 'reserved']) {
        const ws = await open()
        ws.send(ws.frame(TEXT, 'Hello'))
        await ws.echoed(5)
        await expectClose(ws, ws.frame(opcode, payload), 1002)
      }
    },
  )
})

describe('5 fragmentation', () => {
  it.each([
    ['5.1 a fragmented ping', PING],
    ['5.2 a fragmented pong', PONG],
  ])('%s: 1002', async (_what, opcode) => {
    const ws = await open()
    await expectClose(
      ws,
      Buffer.concat([ws.frame(opcode, 'frag-1', { fin: false }), ws.frame(0, 'frag-2')]),
      1002,
    )
  })

  for (const [opcode, kind] of [
    [TEXT, 'text'],
    [BINARY, 'binary'],
  ] as const) {
    it(`5.3-5.5 a ${kind} message in two fragments, whole and a byte at a time`, async () => {
      for (const chunk of [undefined, 1]) {
        const ws = await open()
        const wire = [ws.frame(opcode, 'fragment1', { fin: false }), ws.frame(0, 'fragment2')]
        await expectEcho(ws, Buffer.from('fragment1fragment2'), wire, chunk)
      }
    })

    it(`5.6-5.8 a ${kind} message with a ping between its fragments: pong, then the message`, async () => {
      for (const chunk of [undefined, 1]) {
        const ws = await open()
        const wire = [
          ws.frame(opcode, 'fragment1', { fin: false }),
          ws.frame(PING, 'ping payload'),
          ws.frame(0, 'fragment2'),
        ]
        await expectEcho(ws, Buffer.from('fragment1fragment2'), wire, chunk)
        expect(ws.pongs().map(String)).toEqual(['ping payload'])
      }
    })
  }

  it.each([
    [
      '5.9 a final continuation with nothing to continue',
      (ws: RawWs) => [ws.frame(0, 'x'), ws.frame(TEXT, 'y')],
    ],
    [
      '5.10 a non-final continuation with nothing to continue',
      (ws: RawWs) => [ws.frame(0, 'x', { fin: false })],
    ],
    [
      '5.15 a continuation after a finished fragmented message',
      (ws: RawWs) => [ws.frame(TEXT, 'a', { fin: false }), ws.frame(0, 'b'), ws.frame(0, 'c')],
    ],
    [
      '5.17 a new message while one is fragmented',
      (ws: RawWs) => [ws.frame(TEXT, 'a', { fin: false }), ws.frame(TEXT, 'b')],
    ],
    [
      '5.19 a binary message inside a fragmented text one',
      (ws: RawWs) => [ws.frame(TEXT, 'a', { fin: false }), ws.frame(BINARY, 'b', { fin: false })],
    ],
  ])('%s: 1002', async (_what, frames) => {
    const ws = await open()
    await expectClose(ws, Buffer.concat(frames(ws)), 1002)
  })
})

describe('6 UTF-8 in text messages', () => {
  const valid = [
    '',
    'Hello-µ@ßöäüàá-UTF-8!!',
    'κόσμε',
    '\u{10ffff}',
    '\u{ffff}\u{fffe}',
    '\u0080\u07ff\u0800',
  ]
  it.each(valid)('6.x valid %j: relayed, whole and split at every byte', async (text) => {
    const bytes = Buffer.from(text, 'utf8')
    const ws = await open()
    await expectEcho(ws, bytes, [ws.frame(TEXT, bytes)])
    const fragmented = await open()
    const frames = [...bytes].map((b, i) =>
      fragmented.frame(i === 0 ? TEXT : 0, Buffer.from([b]), { fin: i === bytes.length - 1 }),
    )
    if (frames.length > 0) await expectEcho(fragmented, bytes, frames, 1)
  })

  it.each([
    ['6.3 a lone continuation byte', [0x80]],
    ['6.6 cut in the middle of a code point', [0xce, 0xba, 0xe1]],
    ['6.8 above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['6.9 overlong slash', [0xc0, 0xaf]],
    ['6.10 overlong NUL', [0xe0, 0x80, 0x80]],
    ['6.11 a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['6.21 impossible bytes', [0xfe, 0xff]],
  ])('%s: 1007, whole and fragmented', async (_what, bytes) => {
    const ws = await open()
    await expectClose(ws, ws.frame(TEXT, Buffer.from(bytes)), 1007)
    const fragmented = await open()
    const frames = bytes.map((b, i) =>
      fragmented.frame(i === 0 ? TEXT : 0, Buffer.from([b]), { fin: i === bytes.length - 1 }),
    )
    await expectClose(fragmented, Buffer.concat(frames), 1007)
  })
})

describe('7 close handling', () => {
  it('7.1.1 a message, then close 1000: the message comes back, then close 1000', async () => {
    const ws = await open()
    await expectEcho(ws, Buffer.from('Hello World!'), [ws.frame(TEXT, 'Hello World!')])
  })

  it('7.1.2-7.1.4 nothing after the close frame is read: another close, a ping, a message', async () => {
    const ws = await open()
    ws.send(
      Buffer.concat([
        ws.frame(CLOSE, Buffer.from([3, 232])),
        ws.frame(CLOSE, Buffer.from([3, 232])),
        ws.frame(PING, 'x'),
        ws.frame(TEXT, 'late'),
      ]),
    )
    expect(await ws.closeCode()).toBe(1000)
    expect(ws.pongs()).toEqual([])
    expect(ws.frames.filter((f) => f.opcode === CLOSE)).toHaveLength(1)
  })

  it('7.1.5 a fragment, then close: closed 1000', async () => {
    const ws = await open()
    ws.send(ws.frame(TEXT, 'frag', { fin: false }))
    ws.close(1000)
    expect(await ws.closeCode()).toBe(1000)
  })

  it('7.3.1 an empty close frame is answered with an empty close frame', async () => {
    const ws = await open()
    ws.send(ws.frame(CLOSE, ''))
    await ws.closed
    const close = ws.frames.find((f) => f.opcode === CLOSE)
    expect(close?.payload.length).toBe(0)
  })

  it.each([
    ['7.3.2 a 1-byte close payload', Buffer.from([3]), 1002],
    ['7.3.3 1000 with no reason', Buffer.from([3, 232]), 1000],
    [
      '7.3.4 1000 with a reason',
      Buffer.concat([Buffer.from([3, 232]), Buffer.from('Hello World!')]),
      1000,
    ],
    [
      '7.3.5 1000 with a 123-byte reason',
      Buffer.concat([Buffer.from([3, 232]), Buffer.alloc(123, 0x2a)]),
      1000,
    ],
    [
      '7.3.6 1000 with a 124-byte reason (a 126-byte control frame)',
      Buffer.concat([Buffer.from([3, 232]), Buffer.alloc(124, 0x2a)]),
      1002,
    ],
    ['7.5.1 a reason that is not UTF-8', Buffer.from([3, 232, 0xce, 0xba, 0xe1, 0xbd]), 1007],
  ])('%s: %i', async (_what, payload, code) => {
    const ws = await open()
    await expectClose(ws, ws.frame(CLOSE, payload), code)
  })

  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])(
    '7.7 a valid close code %i is echoed',
    async (code) => {
      const ws = await open()
      ws.close(code)
      expect(await ws.closeCode()).toBe(code)
    },
  )

  it.each([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535])(
    '7.9 an invalid close code %i: 1002',
    async (code) => {
      const ws = await open()
      ws.close(code)
      expect(await ws.closeCode()).toBe(1002)
    },
  )
})

describe('9 limits and performance: large and many messages arrive intact', () => {
  it.each([64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB])(
    '9.1 a text message of %i bytes',
    async (length) => {
      const ws = await open()
      const payload = Buffer.alloc(length, 0x2a)
      await expectEcho(ws, payload, [ws.frame(TEXT, payload)])
    },
  )

  it.each([64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB])(
    '9.2 a binary message of %i bytes',
    async (length) => {
      const ws = await open()
      const payload = pattern(length, 9)
      await expectEcho(ws, payload, [ws.frame(BINARY, payload)])
    },
  )

  it.each([64, 256, 4 * KiB, 64 * KiB, 1 * MiB])(
    '9.3-9.4 a 4 MiB message in fragments of %i bytes',
    async (size) => {
      for (const opcode of [TEXT, BINARY]) {
        const ws = await open()
        const payload = opcode === TEXT ? Buffer.alloc(4 * MiB, 0x61) : pattern(4 * MiB, 3)
        const frames: Buffer[] = []
        for (let at = 0; at < payload.length; at += size)
          frames.push(
            ws.frame(at === 0 ? opcode : 0, payload.subarray(at, at + size), {
              fin: at + size >= payload.length,
            }),
          )
        // A text message is held whole, and so limited to 16,384 fragments (ws's maxFragments): 1008.
        // A binary one streams: any number of fragments.
        if (opcode === TEXT && frames.length > 16 * 1024)
          await expectClose(ws, Buffer.concat(frames), 1008)
        else await expectEcho(ws, payload, frames)
      }
    },
  )

  it.each([64, 4 * KiB, 64 * KiB])(
    '9.5-9.6 a 1 MiB binary message written in pieces of %i bytes',
    async (size) => {
      const ws = await open()
      const payload = pattern(MiB, 5)
      await expectEcho(ws, payload, [ws.frame(BINARY, payload)], size)
    },
  )

  it.each([TEXT, BINARY])(
    '9.7-9.8 1000 messages of opcode %i, one after another',
    async (opcode) => {
      const ws = await open()
      const messages = Array.from({ length: 1000 }, (_, i) => Buffer.from(`message ${i};`))
      await expectEcho(
        ws,
        Buffer.concat(messages),
        messages.map((m) => ws.frame(opcode, m)),
      )
    },
  )
})
