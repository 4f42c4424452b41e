/**
 * @module relay/frame-sender
 * Frames what the server sends (RFC 6455 5.2; a server never masks): a 2, 4 or 10-byte header written
 * with its payload in one corked write, so the kernel gets both in one `writev` and the payload is never
 * copied. Knows nothing of the receiver or of what the bytes mean.
 */
import type { Duplex } from 'node:stream'

export const OPCODE = { text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

/** The header of one unmasked, final frame of `length` payload bytes. */
export function frameHeader(opcode: number, length: number): Buffer {
  if (length < 126) {
    const header = Buffer.allocUnsafe(2)
    header[0] = 0x80 | opcode
    header[1] = length
    return header
  }
  if (length < 65536) {
    const header = Buffer.allocUnsafe(4)
    header[0] = 0x80 | opcode
    header[1] = 126
    header.writeUInt16BE(length, 2)
    return header
  }
  const header = Buffer.allocUnsafe(10)
  header[0] = 0x80 | opcode
  header[1] = 127
  header.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
  header.writeUInt32BE(length >>> 0, 6)
  return header
}

/**
 * Writes one frame. `done` runs when the payload has been handed to the kernel (or with the error that
 * stopped it), as `socket.write`'s callback does. Returns what `socket.write` returned for the payload.
 */
export function writeFrame(
  socket: Duplex,
  opcode: number,
  payload: Buffer,
  done?: (err?: Error | null) => void,
): boolean {
  const header = frameHeader(opcode, payload.length)
  if (payload.length === 0) return socket.write(header, done)
  socket.cork()
  socket.write(header)
  const ok = socket.write(payload, done)
  socket.uncork()
  return ok
}

/** Control frames carry at most 125 bytes: a close reason at most 123 after its code. */
const MAX_REASON_BYTES = 123

/**
 * A close frame's payload: the code, then the reason's UTF-8 bytes (no code: empty). A longer reason is cut
 * to 123 bytes at a character boundary (ws throws instead; a close must never fail or carry broken UTF-8).
 */
export function closePayload(code: number | undefined, reason: string | Buffer = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0)
  let text = typeof reason === 'string' ? Buffer.from(reason) : reason
  if (text.length > MAX_REASON_BYTES) {
    let end = MAX_REASON_BYTES
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end-- // never split a UTF-8 sequence
    text = text.subarray(0, end)
  }
  const payload = Buffer.allocUnsafe(2 + text.length)
  payload.writeUInt16BE(code, 0)
  text.copy(payload, 2)
  return payload
}
