/**
 * gateway/accept-upgrade completes upgrades that negotiate no extension without `ws`. Differential: for
 * random keys and subprotocol offers, the daemon's 101 is byte for byte what a `ws` server with the same
 * subprotocol choice sends. Hostile subprotocol headers get a 101 or a 400 and never see a bearer entry
 * echoed; frames sent with the request or during the dial all arrive, in order. And `ws` completes exactly
 * the upgrades that may negotiate permessage-deflate.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import WebSocket, { WebSocketServer } from 'ws'
import { chooseSubprotocol } from '../../src/gateway/accept-upgrade.js'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { RawWs } from '../helpers/raw-ws.js'
import { encodeFrame } from '../helpers/frames.js'
import { startEchoTunnel } from '../helpers/tunnel.js'
import { scale } from '../robust/scale.js'

const d = createDisposer()
afterEach(() => d.run())
afterEach(() => vi.restoreAllMocks())

/** A plain `ws` server choosing subprotocols as the daemon does: the oracle. */
async function startWsOracle(): Promise<number> {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    handleProtocols: chooseSubprotocol,
  })
  const server = http.createServer()
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => ws.terminate())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

/** Sends `request` and resolves with the response head (up to and including the blank line). */
async function responseHead(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  d.add(() => void socket.destroy())
  await once(socket, 'connect')
  socket.write(request)
  let seen = ''
  while (!seen.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer]
    seen += chunk.toString('latin1')
  }
  socket.destroy()
  return seen.slice(0, seen.indexOf('\r\n\r\n') + 4)
}

/** The payloads of the complete unmasked server frames at the start of `wire`, joined. */
function payloadsOf(wire: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  while (at + 2 <= wire.length) {
    const short = wire[at + 1]! & 0x7f
    const headerLength = short === 126 ? 4 : short === 127 ? 10 : 2
    if (at + headerLength > wire.length) break
    const length =
      short === 126
        ? wire.readUInt16BE(at + 2)
        : short === 127
          ? Number(wire.readBigUInt64BE(at + 2))
          : short
    if (at + headerLength + length > wire.length) break
    parts.push(wire.subarray(at + headerLength, at + headerLength + length))
    at += headerLength + length
  }
  return Buffer.concat(parts)
}

/** The next chunk `socket` reads; fails after 10 s of silence, saying how far it got (`progress`). */
async function nextChunk(socket: net.Socket, progress: string): Promise<Buffer> {
  const silence = AbortSignal.timeout(10_000)
  try {
    const [chunk] = (await once(socket, 'data', { signal: silence })) as [Buffer]
    return chunk
  } catch {
    throw new Error(`nothing more arrived after ${progress}`)
  }
}

const PROTOCOLS = ['binary', 'gangway.v1', 'chat', 'gangway.bearer.c2VjcmV0', 'v2.stomp'] as const

describe('accept-upgrade', () => {
  it('writes the 101 ws writes, for any key and any offered subprotocols', async () => {
    const { server } = await startEchoTunnel(d)
    const gangway = (server.address() as { port: number }).port
    const oracle = await startWsOracle()
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uniqueArray(fc.constantFrom(...PROTOCOLS), { maxLength: PROTOCOLS.length }),
        fc.constantFrom(',', ', ', ' ,\t'),
        async (nonce, offered, separator) => {
          const headers: Record<string, string> = {
            'Sec-WebSocket-Key': Buffer.from(nonce).toString('base64'),
          }
          if (offered.length > 0) headers['Sec-WebSocket-Protocol'] = offered.join(separator)
          const request = upgradeRequest(headers)
          const ours = await responseHead(gangway, request)
          expect(ours).toBe(await responseHead(oracle, request))
          expect(ours.startsWith('HTTP/1.1 101 ')).toBe(true)
          expect(ours).not.toContain('gangway.bearer') // a bearer entry carries a secret
        },
      ),
      { numRuns: scale(25, 300) },
    )
  })

  it('answers any Sec-WebSocket-Protocol header with a 101 or a 400, never echoes a bearer entry, and stays up', async () => {
    const { server } = await startEchoTunnel(d)
    const port = (server.address() as { port: number }).port
    const piece = fc.oneof(
      fc.constantFrom(...PROTOCOLS, '', ' ', '\t', ',', ';', '"', 'gangway.v1 ', '\u00e9', '(x)'),
      fc.string({ maxLength: 12 }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 8 }), async (pieces) => {
        // Only what can be sent in a header line at all (no CR, LF or NUL).
        const header = pieces.join('').replace(/[\r\n\0]/g, '')
        const head = await responseHead(port, upgradeRequest({ 'Sec-WebSocket-Protocol': header }))
        expect(head).toMatch(/^HTTP\/1\.1 (101|400) /)
        expect(head).not.toContain('gangway.bearer')
      }),
      { numRuns: scale(50, 1000) },
    )
    const ws = await RawWs.open(port)
    d.add(() => ws.socket.destroy())
    const bytes = randomBytes(100)
    ws.send(ws.frame(0x2, bytes))
    expect((await ws.echoed(bytes.length)).equals(bytes)).toBe(true)
  })

  it('relays, in order, frames a client sends with its request and while the target is dialled', async () => {
    const { server } = await startEchoTunnel(d)
    const port = (server.address() as { port: number }).port
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 2000 }), { minLength: 1, maxLength: 6 }),
        fc.nat(6),
        async (payloads, withRequest) => {
          const frames = payloads.map((p) =>
            encodeFrame({
              fin: true,
              rsv: 0,
              opcode: 0x2,
              payload: Buffer.from(p),
              masked: true,
              mask: [9, 8, 7, 6],
              lengthForm: 'min',
            }),
          )
          const socket = net.connect(port, '127.0.0.1')
          socket.on('error', () => {})
          d.add(() => void socket.destroy())
          await once(socket, 'connect')
          const first = Math.min(withRequest, frames.length)
          // Some frames in the same write as the request (ws's `head`), the rest before any answer.
          socket.write(Buffer.concat([Buffer.from(upgradeRequest()), ...frames.slice(0, first)]))
          for (const frame of frames.slice(first)) socket.write(frame)
          const expected = Buffer.concat(payloads.map((p) => Buffer.from(p)))
          let seen: Buffer = Buffer.alloc(0)
          let payload: Buffer = Buffer.alloc(0)
          while (payload.length < expected.length) {
            const chunk = await nextChunk(socket, `${payload.length} of ${expected.length} bytes`)
            seen = Buffer.concat([seen, chunk])
            const end = seen.indexOf('\r\n\r\n')
            if (end === -1) continue
            payload = payloadsOf(seen.subarray(end + 4))
          }
          expect(seen.subarray(0, 12).toString()).toBe('HTTP/1.1 101')
          expect(payload.equals(expected)).toBe(true)
          socket.destroy()
        },
      ),
      { numRuns: scale(25, 300) },
    )
  })

  it('leaves to ws exactly the upgrades that may negotiate permessage-deflate', async () => {
    const handleUpgrade = vi.spyOn(WebSocketServer.prototype, 'handleUpgrade')
    for (const [compress, offer, viaWs] of [
      [false, true, 0],
      [true, false, 0],
      [true, true, 1],
    ] as const) {
      handleUpgrade.mockClear()
      const { server } = await startEchoTunnel(d, { compress })
      const port = (server.address() as { port: number }).port
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { perMessageDeflate: offer })
      d.add(() => ws.terminate())
      await once(ws, 'open')
      expect({
        compress,
        offer,
        extensions: ws.extensions,
        viaWs: handleUpgrade.mock.calls.length,
      }).toEqual({
        compress,
        offer,
        extensions: compress && offer ? 'permessage-deflate' : '',
        viaWs,
      })
      // Relayed either way.
      const bytes = randomBytes(32)
      ws.send(bytes)
      const [echo] = (await once(ws, 'message')) as [Buffer]
      expect(echo.equals(bytes)).toBe(true)
    }
  })
})
