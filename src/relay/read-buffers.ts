/**
 * @module relay/read-buffers
 * Which buffer a socket's next read goes into (the client's through relay/user-buffer, the target's
 * through relay/target-reads), so that a bulk transfer reuses a few buffers instead of allocating a fresh
 * one per read: the allocation, the page faults of new heap and the collector's work were the largest cost
 * outside the kernel (issue #15).
 *
 * - A socket with small reads (a terminal, a query) reads into one buffer shared by every socket of the
 *   process, and costs no memory of its own. Its bytes are copied out in the read callback, before any
 *   other socket can read into it. (A socket that has not had a bulk read yet has no ReadBuffers at all.)
 * - A read that fills `BULK_READ` or more suggests a bulk transfer: the socket then reads into a buffer of
 *   its own (`OWN_READ` bytes: four times fewer reads than Node's 64 KiB) and parses it in place.
 * - Whoever keeps bytes of an own buffer (a write the kernel did not take at once) says so: those
 *   bytes are then lent, and the next read goes into the room after them; when too little room is left,
 *   into a spare slab or a new one. A slab is reused once every read lent from it was given back (its
 *   bytes written). So the slabs a socket holds are about the bytes queued for the target (bounded by
 *   its backpressure) plus one read.
 * Knows nothing of WebSockets or targets.
 */

/** The shared buffer: as large as Node's own reads. */
const SHARED_READ = 64 * 1024
/** A socket's own buffer (a slab), for bulk transfers. */
export const OWN_READ = 256 * 1024
/** The least room a read is given: below it, the next read goes into another slab. */
const MIN_READ = 64 * 1024
/** A read at least this large moves the socket to a buffer of its own. */
export const BULK_READ = 32 * 1024
/** Small reads in a row after which a socket goes back to the shared buffer. */
const SMALL_READS_TO_SHARE = 8

let shared: Buffer | undefined

/** The buffer every socket without a slab of its own reads into (copied out in the read callback). */
export function sharedReadBuffer(): Buffer {
  return (shared ??= Buffer.allocUnsafeSlow(SHARED_READ))
}

interface Slab {
  readonly buffer: Buffer
  /** Where the next read may start: bytes before it are lent (not yet written by the borrower). */
  free: number
  /** Reads of this slab still lent. */
  lent: number
}

export class ReadBuffers {
  #slab: Slab | undefined
  #spares: Slab[] = []
  #bulk = false
  #smallReads = 0
  #maxSpares = 1
  #readLimit = OWN_READ

  /**
   * `queueBytes`: how many bytes the borrower may hold before it pauses the socket. That many bytes of
   * slabs are kept for reuse (and one more), so a steady transfer allocates nothing. `bulk`: the socket
   * is known to be in a bulk transfer, so the first read goes into a slab.
   */
  constructor(queueBytes = 0, bulk = false) {
    this.queueBytes(queueBytes)
    this.#bulk = bulk
  }

  queueBytes(bytes: number): void {
    this.#maxSpares = Math.ceil(bytes / (OWN_READ - MIN_READ)) + 1
    // A small mark (`--high-water-mark 64KiB`) is a promise about memory: reads stay that small too.
    this.#readLimit = Math.max(MIN_READ, Math.min(OWN_READ, bytes))
  }

  /** The buffer the next read goes into: the shared one, or the free room of the socket's slab. */
  readonly next = (): Buffer => {
    if (!this.#bulk) return sharedReadBuffer()
    let slab = this.#slab
    if (slab === undefined || slab.buffer.length - slab.free < MIN_READ) {
      slab = this.#spares.pop() ?? { buffer: Buffer.allocUnsafeSlow(OWN_READ), free: 0, lent: 0 }
      this.#slab = slab
    }
    const end = Math.min(slab.buffer.length, slab.free + this.#readLimit)
    return slab.free === 0 && end === slab.buffer.length
      ? slab.buffer
      : slab.buffer.subarray(slab.free, end)
  }

  /** True when `buffer` is the shared one: its bytes must be copied before anything may keep them. */
  isShared(buffer: Buffer): boolean {
    return buffer === shared
  }

  /**
   * After a read of `bytes` into `buffer` (what `next` returned) was handled. When `lent`, something
   * still holds views of those bytes: the returned function gives them back (call it exactly once).
   * Picks the kind of buffer for the next read.
   */
  done(bytes: number, buffer: Buffer, lent: boolean): (() => void) | undefined {
    let giveBack: (() => void) | undefined
    const slab = this.#slab
    if (lent && slab !== undefined && buffer.buffer === slab.buffer.buffer) {
      slab.lent++
      // The next read starts past them (8-byte aligned for the unmask). From where this read landed,
      // not from `free`: a give-back may have reset `free` after this read's buffer was handed out.
      slab.free = buffer.byteOffset - slab.buffer.byteOffset + ((bytes + 7) & ~7)
      giveBack = () => this.#giveBack(slab)
    }
    if (bytes >= BULK_READ) {
      this.#bulk = true
      this.#smallReads = 0
    } else if (this.#bulk && ++this.#smallReads >= SMALL_READS_TO_SHARE) {
      // A bulk transfer has its small reads too (the sender was slower for a moment): only a run of
      // them means the transfer is over. Back to the shared buffer; the slabs go.
      this.#bulk = false
      this.#slab = undefined
      this.#spares = []
    }
    return giveBack
  }

  #giveBack(slab: Slab): void {
    if (--slab.lent > 0) return
    slab.free = 0
    // The socket's current slab is simply reused from its start; an older one becomes a spare.
    if (slab !== this.#slab && this.#bulk && this.#spares.length < this.#maxSpares)
      this.#spares.push(slab)
  }
}
