/**
 * Fuzzes a live daemon on the wire: random HTTP upgrade requests (bad versions and keys, smuggling attempts,
 * huge or broken headers, bare LF line endings) and random WebSocket frame sequences after a valid handshake
 * (bad opcodes, RSV bits, unmasked frames, lying or huge lengths, fragments, control frames, close codes).
 * Every connection must end with an HTTP status or a documented close code, a refused handshake must never
 * dial the target, and a canary tunnel must keep working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { once } from 'node:events'
import net from 'node:net'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer, type TcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'
import type { TunnelServer } from '../../src/gateway/server.js'
import { scale } from './scale.js'

const d = createDisposer()
let target: TcpServer
let server: TunnelServer
let port: number

beforeAll(async () => {
  target = await startTcpServer((socket) => socket.resume()) // a sink: reads and drops
  d.add(() => target.close())
  server = await startTunnel(d, tcpTarget(target.port), {
    handshakeTimeoutMs: 300, // a request head that never completes is answered 408 quickly
    maxHeaderBytes: 8 * 1024,
    maxMessageBytes: 64 * 1024,
    compress: true,
  })
  port = (server.address() as { port: number }).port
})
afterAll(() => d.run())

/**
 * Writes `bytes` (after sending `afterHandshake` and waiting for the 101, as a real client would), ends the
 * writing side at once, after the daemon's reply headers, or never, and resolves with everything the daemon
 * sent until it closed the connection.
 */
async function exchange(
  bytes: Buffer,
  options: { afterHandshake?: Buffer; end?: 'now' | 'after-reply' | 'never' } = {},
): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  const closed = new Promise((resolve) => socket.once('close', resolve))
  let onHeaders: (() => void) | undefined
  const headers = new Promise<void>((resolve) => (onHeaders = resolve))
  socket.on('data', (c: Buffer) => {
    chunks.push(c)
    if (Buffer.concat(chunks).includes('\r\n\r\n')) onHeaders?.()
  })
  if (options.afterHandshake !== undefined) {
    socket.write(options.afterHandshake)
    await Promise.race([headers, closed])
  }
  socket.write(bytes)
  const end = options.end ?? 'now'
  if (end === 'now') socket.end()
  if (end === 'after-reply') {
    await Promise.race([headers, closed])
    socket.end()
  }
  await closed
  return Buffer.concat(chunks)
}

async function canary(): Promise<void> {
  const ws = await openWs(d, server.url())
  ws.send(Buffer.from('canary'))
  ws.close()
  await new Promise((resolve) => ws.once('close', resolve))
}

// --- HTTP requests -----------------------------------------------------------------------------------
const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const header = fc.oneof(
  fc.constant(['Upgrade', 'websocket']),
  fc.constant(['Upgrade', 'WebSocket, h2c']),
  fc.constant(['Connection', 'Upgrade']),
  fc.constant(['Connection', 'keep-alive, Upgrade']),
  fc.constant(['Sec-WebSocket-Key', KEY]),
  fc.constantFrom(
    ['Sec-WebSocket-Key', 'short'],
    ['Sec-WebSocket-Key', ''],
    ['Sec-WebSocket-Key', KEY + KEY],
  ),
  fc.constantFrom(
    ['Sec-WebSocket-Version', '13'],
    ['Sec-WebSocket-Version', '8'],
    ['Sec-WebSocket-Version', '13, 8'],
    ['Sec-WebSocket-Version', ''],
  ),
  fc.constantFrom(
    ['Sec-WebSocket-Protocol', 'binary'],
    ['Sec-WebSocket-Protocol', 'a,,b'],
    ['Sec-WebSocket-Protocol', ' , '],
    ['Sec-WebSocket-Protocol', 'x'.repeat(300)],
  ),
  fc.constantFrom(
    ['Sec-WebSocket-Extensions', 'permessage-deflate'],
    ['Sec-WebSocket-Extensions', 'permessage-deflate; server_max_window_bits=7'],
    ['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits=99'],
    ['Sec-WebSocket-Extensions', 'foo;;'],
  ),
  fc.constantFrom(
    ['Content-Length', '5'],
    ['Content-Length', '5, 6'],
    ['Transfer-Encoding', 'chunked'],
    ['Transfer-Encoding', 'chunked, identity'],
  ),
  fc.constantFrom(
    ['Host', 'a'],
    ['Host', ''],
    ['X-Long', 'y'.repeat(9000)],
    ['X-Nul', 'a\u0000b'],
    ['X-Cr', 'a\rb'],
    [' Folded', 'x'],
    ['Bad Name', 'x'],
    ['', 'no-name'],
  ),
)
/** A valid upgrade request, to mutate: half the fuzzed requests start from it. */
const VALID_HEADERS: Array<[string, string]> = [
  ['Host', 'x'],
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', KEY],
  ['Sec-WebSocket-Version', '13'],
]
const randomRequest = fc.record({
  method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'HEAD', 'OPTIONS', 'G ET', ''),
  target: fc.constantFrom(
    '/',
    '/x?token=abc',
    'http://127.0.0.1/',
    '*',
    '/' + 'a'.repeat(5000),
    '/%00',
    '',
  ),
  version: fc.constantFrom(
    'HTTP/1.1',
    'HTTP/1.1',
    'HTTP/1.0',
    'HTTP/2.0',
    'HTTP/1.1x',
    'http/1.1',
    '',
  ),
  headers: fc.array(header, { maxLength: 10 }),
  eol: fc.constantFrom('\r\n', '\r\n', '\n'),
  complete: fc.boolean(),
  body: fc.uint8Array({ maxLength: 64 }),
})
const mutatedValidRequest = fc
  .record({
    drop: fc.subarray(
      VALID_HEADERS.map((_h, i) => i),
      { maxLength: 2 },
    ),
    extra: fc.array(header, { maxLength: 3 }),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
  })
  .map((m) => ({
    method: 'GET',
    target: '/',
    version: m.version,
    headers: [...VALID_HEADERS.filter((_h, i) => !m.drop.includes(i)), ...m.extra],
    eol: '\r\n',
    complete: true,
    body: new Uint8Array(),
  }))
const requestHead = fc.oneof(randomRequest, mutatedValidRequest)

describe('fuzzed HTTP upgrade requests', () => {
  it('every request gets a status line (or a 101), refused ones never dial, and the daemon keeps serving', async () => {
    const statuses = new Map<string, number>()
    let upgrades = 0
    const before = target.sockets.length
    await fc.assert(
      fc.asyncProperty(requestHead, async (r) => {
        const lines = [
          `${r.method} ${r.target} ${r.version}`,
          ...r.headers.map(([k, v]) => `${k}: ${v}`),
        ]
        const head = lines.join(r.eol) + r.eol + (r.complete ? r.eol : '')
        const request = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(r.body)])
        const reply = await exchange(request, { end: 'after-reply' })
        const status = /^HTTP\/1\.1 (\d{3}) /.exec(reply.toString('latin1'))?.[1] ?? 'closed'
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
        if (status === '101') upgrades++
        // A connection is either answered with a status or dropped after a client-side reset; never hung.
        expect(['101', '400', '405', '408', '413', '426', '431', '505', 'closed']).toContain(status)
      }),
      { numRuns: scale(300, 5_000) },
    )
    console.log('HTTP fuzz outcomes:', Object.fromEntries(statuses))
    // Only a completed upgrade dials the target.
    expect(target.sockets.length - before).toBe(upgrades)
    await canary()
  })
})

describe('slowloris', () => {
  it('hundreds of connections that never finish their request head are all answered 408, and a real client still gets through', async () => {
    const count = scale(200, 2_000)
    const dialledBefore = target.sockets.length
    const sockets = await Promise.all(
      Array.from({ length: count }, async () => {
        const socket = net.connect(port, '127.0.0.1')
        socket.on('error', () => {})
        await once(socket, 'connect')
        socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ')
        return socket
      }),
    )
    await canary() // served while all of them hang on
    const answers = await Promise.all(
      sockets.map(async (socket) => {
        const chunks: Buffer[] = []
        socket.on('data', (c: Buffer) => chunks.push(c))
        await new Promise((resolve) => socket.once('close', resolve))
        return Buffer.concat(chunks).toString('latin1').slice(0, 12)
      }),
    )
    expect(new Set(answers)).toEqual(new Set(['HTTP/1.1 408']))
    expect(target.sockets.length).toBe(dialledBefore + 1) // only the canary reached the target
  })
})

// --- WebSocket frames --------------------------------------------------------------------------------
const HANDSHAKE = Buffer.from(
  `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
)

const frame = fc
  .record({
    fin: fc.boolean(),
    rsv: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, 4), // mostly valid frames, to reach deeper states
    opcode: fc.constantFrom(0, 1, 2, 2, 2, 2, 2, 8, 9, 10, 3, 11),
    masked: fc.constantFrom(true, true, true, true, true, true, false),
    payload: fc.uint8Array({ maxLength: 200 }),
    lengthForm: fc.constantFrom(
      'exact',
      'exact',
      'exact',
      'exact',
      'exact',
      'exact',
      '16',
      '64',
      'lie-short',
      'lie-huge',
    ),
    mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  })
  .map((f) => {
    const payload = Buffer.from(f.payload)
    const first = (f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode
    const maskBit = f.masked ? 0x80 : 0
    let lengthBytes: Buffer
    const len = f.lengthForm === 'lie-short' ? Math.max(0, payload.length - 3) : payload.length
    if (f.lengthForm === 'lie-huge') {
      lengthBytes = Buffer.from([maskBit | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    } else if (f.lengthForm === '64') {
      lengthBytes = Buffer.alloc(9)
      lengthBytes[0] = maskBit | 127
      lengthBytes.writeBigUInt64BE(BigInt(len), 1)
    } else if (f.lengthForm === '16' || len > 125) {
      lengthBytes = Buffer.from([maskBit | 126, len >> 8, len & 0xff])
    } else {
      lengthBytes = Buffer.from([maskBit | len])
    }
    const body = f.masked ? payload.map((b, i) => b ^ f.mask[i % 4]!) : payload
    const bytes = Buffer.concat([
      Buffer.from([first]),
      lengthBytes,
      f.masked ? Buffer.from(f.mask) : Buffer.alloc(0),
      Buffer.from(body),
    ])
    // A close frame the client sends may be echoed by the server with the same code (RFC 6455 5.5.1).
    const closeCode = f.opcode === 8 && payload.length >= 2 ? payload.readUInt16BE(0) : undefined
    return { bytes, closeCode }
  })

/** The close code in the first close frame the server sent after the 101, or undefined. */
function serverCloseCode(reply: Buffer): number | undefined {
  const start = reply.indexOf('\r\n\r\n')
  if (start === -1) return undefined
  let i = start + 4
  while (i + 2 <= reply.length) {
    const opcode = reply[i]! & 0x0f
    let len = reply[i + 1]! & 0x7f
    let offset = i + 2
    if (len === 126) {
      len = reply.readUInt16BE(offset)
      offset += 2
    } else if (len === 127) {
      len = Number(reply.readBigUInt64BE(offset))
      offset += 8
    }
    if (opcode === 0x8) return len >= 2 ? reply.readUInt16BE(offset) : 1005
    i = offset + len
  }
  return undefined
}

describe('fuzzed WebSocket frames', () => {
  it('every sequence ends with a documented close (or the client’s own EOF); the daemon keeps serving', async () => {
    const codes = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 6 }), async (frames) => {
        const reply = await exchange(Buffer.concat(frames.map((f) => f.bytes)), {
          afterHandshake: HANDSHAKE,
        })
        expect(reply.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
        const code = serverCloseCode(reply)
        const key = String(code ?? 'eof')
        codes.set(key, (codes.get(key) ?? 0) + 1)
        // 1002/1003/1007/1008/1009: protocol errors; 1005 or a code the client sent: its close, echoed;
        // 1000: the tunnel ended; eof: the frames were fine and our FIN ended the tunnel.
        const echoed = frames.flatMap((f) =>
          f.closeCode === undefined ? [] : [String(f.closeCode)],
        )
        expect([
          '1000',
          '1002',
          '1003',
          '1005',
          '1007',
          '1008',
          '1009',
          'eof',
          ...echoed,
        ]).toContain(key)
      }),
      { numRuns: scale(400, 10_000) },
    )
    console.log('frame fuzz close codes:', Object.fromEntries(codes))
    expect(server.stats().tunnels).toBeLessThanOrEqual(scale(400, 10_000))
    await canary()
  })

  it('a deflate bomb under --compress is cut at the inflated limit (1009)', async () => {
    const { deflateRawSync } = await import('node:zlib')
    const ext = Buffer.from(
      HANDSHAKE.toString().replace(
        '\r\n\r\n',
        '\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
      ),
    )
    const bomb = deflateRawSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 }).subarray(0, -4) // RFC 7692 7.2.1
    const len = Buffer.alloc(8)
    len.writeBigUInt64BE(BigInt(bomb.length))
    const frameBytes = Buffer.concat([Buffer.from([0xc2, 0x80 | 127]), len, Buffer.alloc(4), bomb]) // FIN+RSV1, masked with 0
    const reply = await exchange(frameBytes, { afterHandshake: ext, end: 'never' })
    expect(reply.toString('latin1')).toMatch(/permessage-deflate/)
    expect(serverCloseCode(reply)).toBe(1009)
    await canary()
  })
})
