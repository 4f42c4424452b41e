/**
 * Client frames as bytes, for tests that feed a server frame by frame: any opcode, RSV bits, mask key,
 * length encoding (including non-minimal ones a library never sends), and the reading of server frames.
 */
import { Duplex } from 'node:stream'

export interface FrameSpec {
  fin: boolean
  rsv: number // 0..7: RSV1..RSV3 as bits 2..0
  opcode: number
  payload: Buffer
  masked: boolean
  mask: [number, number, number, number]
  /** 'min' the shortest encoding; '16'/'64' a longer one for the same length (legal, if unusual). */
  lengthForm: 'min' | '16' | '64'
}

/** The wire bytes of one client frame (the payload masked with its key when `masked`). */
export function encodeFrame(f: FrameSpec): Buffer {
  const n = f.payload.length
  let form = f.lengthForm
  if (form === 'min') form = n < 126 ? 'min' : n < 65536 ? '16' : '64'
  if (form === '16' && n > 65535) form = '64'
  const head: number[] = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode]
  const maskBit = f.masked ? 0x80 : 0
  if (form === 'min') head.push(maskBit | n)
  else if (form === '16') head.push(maskBit | 126, n >> 8, n & 0xff)
  else {
    head.push(maskBit | 127, 0, 0)
    const high = Math.floor(n / 2 ** 32)
    head.push(
      (high >> 8) & 0xff,
      high & 0xff,
      (n >>> 24) & 0xff,
      (n >>> 16) & 0xff,
      (n >>> 8) & 0xff,
      n & 0xff,
    )
  }
  const payload = Buffer.from(f.payload)
  if (f.masked) {
    head.push(...f.mask)
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ f.mask[i & 3]!
  }
  return Buffer.concat([Buffer.from(head), payload])
}

/** Splits `bytes` at the given cut points (offsets, any order, out of range ignored). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let from = 0
  for (const p of points) {
    out.push(bytes.subarray(from, p))
    from = p
  }
  out.push(bytes.subarray(from))
  return out.filter((b) => b.length > 0)
}

/** An in-memory socket: chunks pushed into it are read one by one (read boundaries kept); writes collected. */
export function memorySocket(): { socket: Duplex; written: Buffer[] } {
  const written: Buffer[] = []
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      written.push(Buffer.from(chunk))
      callback()
    },
  })
  return { socket, written }
}

/** The server frames in `bytes` (unmasked), as opcode + payload. */
export function decodeServerFrames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const frames: Array<{ opcode: number; payload: Buffer }> = []
  let i = 0
  while (i + 2 <= bytes.length) {
    const opcode = bytes[i]! & 0x0f
    let n = bytes[i + 1]! & 0x7f
    let at = i + 2
    if (n === 126) {
      n = bytes.readUInt16BE(at)
      at += 2
    } else if (n === 127) {
      n = Number(bytes.readBigUInt64BE(at))
      at += 8
    }
    frames.push({ opcode, payload: bytes.subarray(at, at + n) })
    i = at + n
  }
  return frames
}
