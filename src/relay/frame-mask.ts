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

/** The rotated key of the unmask in progress: written just before each (synchronous) use, shared. */
const rotated = Buffer.alloc(4)

/**
 * A frame's mask key, kept as four numbers so that a receiver holds no buffer of its own: a slice starting
 * at payload offset `o` is unmasked with the key rotated by `o % 4`, written into one buffer every receiver
 * shares (the unmask is synchronous). Rewritten per frame: no allocation per frame or per connection.
 */
export class FrameMask {
  #k0 = 0
  #k1 = 0
  #k2 = 0
  #k3 = 0

  /** Takes the 4 key bytes at `source[offset…]`. */
  set(source: Buffer, offset: number): void {
    this.#k0 = source[offset]!
    this.#k1 = source[offset + 1]!
    this.#k2 = source[offset + 2]!
    this.#k3 = source[offset + 3]!
  }

  /** Unmasks `data` in place; `phase` is the payload offset of `data[0]` within its frame. */
  unmask(data: Buffer, phase: number): void {
    if (data.length === 0 || (this.#k0 | this.#k1 | this.#k2 | this.#k3) === 0) return
    const r = phase & 3
    const k0 = this.#k0
    const k1 = this.#k1
    const k2 = this.#k2
    const k3 = this.#k3
    rotated[0] = r === 0 ? k0 : r === 1 ? k1 : r === 2 ? k2 : k3
    rotated[1] = r === 0 ? k1 : r === 1 ? k2 : r === 2 ? k3 : k0
    rotated[2] = r === 0 ? k2 : r === 1 ? k3 : r === 2 ? k0 : k1
    rotated[3] = r === 0 ? k3 : r === 1 ? k0 : r === 2 ? k1 : k2
    if (nativeUnmask !== undefined && data.length >= NATIVE_MIN_BYTES) nativeUnmask(data, rotated)
    else unmaskWords(data, rotated)
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
