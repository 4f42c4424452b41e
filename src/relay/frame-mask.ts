/**
 * @module relay/frame-mask
 * Unmasks client frame payload in place (RFC 6455 5.3), at any offset into the payload: a frame's payload
 * arrives in slices, one per socket read, and each slice starts at its own phase of the 4-byte mask. Uses
 * bufferutil's native `unmask` when it is installed (an optional dependency), a word-wise loop otherwise.
 * Knows nothing of frames or sockets.
 */
import { createRequire } from 'node:module'

type NativeUnmask = (buffer: Buffer, mask: Buffer) => void

/** Below this many bytes the JavaScript loop beats the call into native code. */
const NATIVE_MIN_BYTES = 48

const nativeUnmask: NativeUnmask | undefined = loadNative()

function loadNative(): NativeUnmask | undefined {
  if (process.env.WS_NO_BUFFER_UTIL) return undefined // ws's own switch, honoured the same way
  try {
    const require = createRequire(import.meta.url)
    const mod = require('bufferutil') as { unmask?: NativeUnmask }
    return typeof mod.unmask === 'function' ? mod.unmask : undefined
  } catch {
    return undefined
  }
}

/** True when the native unmask of bufferutil is in use. */
export const hasNativeUnmask = nativeUnmask !== undefined

/**
 * A frame's mask key in its four rotations, so that a slice starting at payload offset `o` is unmasked
 * with rotation `o % 4`. One per receiver, rewritten per frame: no allocation per frame.
 */
export class FrameMask {
  readonly #bytes = Buffer.alloc(16)
  readonly #rotations: Buffer[] = [0, 1, 2, 3].map((r) => this.#bytes.subarray(r * 4, r * 4 + 4))
  #zero = true

  /** Takes the 4 key bytes at `source[offset…]`. */
  set(source: Buffer, offset: number): void {
    for (let r = 0; r < 4; r++) {
      for (let i = 0; i < 4; i++) this.#bytes[r * 4 + i] = source[offset + ((r + i) & 3)]!
    }
    this.#zero = this.#bytes.readUInt32LE(0) === 0
  }

  /** Unmasks `data` in place; `phase` is the payload offset of `data[0]` within its frame. */
  unmask(data: Buffer, phase: number): void {
    if (this.#zero || data.length === 0) return
    const r = phase & 3
    if (nativeUnmask !== undefined && data.length >= NATIVE_MIN_BYTES) {
      nativeUnmask(data, this.#rotations[r]!)
      return
    }
    unmaskWords(data, this.#rotations[r]!)
  }
}

/**
 * The fallback: bytes up to a 4-byte boundary of the underlying memory, then 32-bit words, then the tail.
 * `key` is the mask in the rotation of data[0].
 */
export function unmaskWords(data: Buffer, key: Buffer): void {
  const length = data.length
  let i = 0
  const lead = Math.min(length, (4 - (data.byteOffset & 3)) & 3)
  for (; i < lead; i++) data[i] = data[i]! ^ key[i & 3]!
  const wordCount = (length - i) >>> 2
  if (wordCount > 0) {
    const view = new Uint32Array(data.buffer, data.byteOffset + i, wordCount)
    const word = maskWord(key, i)
    for (let w = 0; w < wordCount; w++) view[w] = view[w]! ^ word
    i += wordCount * 4
  }
  for (; i < length; i++) data[i] = data[i]! ^ key[i & 3]!
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** The 32-bit word that XORs the 4 bytes from payload phase `phase` on, in this machine's byte order. */
function maskWord(key: Buffer, phase: number): number {
  const b0 = key[phase & 3]!
  const b1 = key[(phase + 1) & 3]!
  const b2 = key[(phase + 2) & 3]!
  const b3 = key[(phase + 3) & 3]!
  return isLittleEndian
    ? (b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)) >>> 0
    : ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0
}
