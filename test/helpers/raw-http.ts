/**
 * Raw HTTP over `net`, for requests no well-behaved client would send (slow, oversized, malformed).
 */
import net from 'node:net'
import { once } from 'node:events'

/** Sends `request` (written as is) and resolves with everything received until the server closes. */
export async function rawRequest(port: number, request: string | Buffer): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  socket.write(request)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

export function upgradeRequest(headers: Record<string, string> = {}, path = '/'): string {
  const all: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  }
  const lines = Object.entries(all)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}`)
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`
}

/**
 * Completes a WebSocket handshake over a raw socket, then writes `frames` (raw bytes, e.g. an unmasked or
 * malformed frame no WebSocket library would send) and resolves with the close code of the server's close
 * frame (or undefined if it sent none) once the server ends the connection.
 */
export async function rawFrames(port: number, frames: Buffer): Promise<number | undefined> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => {
    chunks.push(c)
    const all = Buffer.concat(chunks)
    if (all.includes('\r\n\r\n') && !socket.writableEnded && chunks.length === 1)
      socket.write(frames)
  })
  socket.write(upgradeRequest())
  await once(socket, 'close')
  const all = Buffer.concat(chunks)
  const body = all.subarray(all.indexOf('\r\n\r\n') + 4)
  // A server frame is unmasked: [0x88, len, code_hi, code_lo, reason…]; skip any data frames before it.
  for (let i = 0; i + 1 < body.length;) {
    const opcode = body[i]! & 0x0f
    const len = body[i + 1]! & 0x7f
    if (opcode === 0x8) return len >= 2 ? body.readUInt16BE(i + 2) : undefined
    i += 2 + len
  }
  return undefined
}

/** A masked client frame (mask key 0, so the payload is sent as is); `fin` and opcode as given. */
export function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  if (payload.length > 125) throw new Error('short frames only')
  return Buffer.concat([
    Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length, 0, 0, 0, 0]),
    payload,
  ])
}
