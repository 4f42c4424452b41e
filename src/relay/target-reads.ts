/**
 * @module relay/target-reads
 * Reads from a target socket into reused buffers (net's `onread`, relay/read-buffers) instead of the fresh
 * 64 KiB buffer Node allocates for every read. The profile of a download showed that allocation (page
 * faults, malloc, the garbage collector's work for every read) as the largest cost left outside the kernel.
 *
 * A read in the socket's own slab is handed to the sink as a view; the sink says whether it kept it (a
 * frame the kernel did not take at once) and, if so, gives it back once written. Reads into the shared
 * buffer, and bytes that may be kept elsewhere (a recording, gangway.v1's credit, deflate), are copied.
 * Knows nothing of WebSockets or tokens.
 */
import type { Socket } from 'node:net'
import { BULK_READ, ReadBuffers, sharedReadBuffer } from './read-buffers.js'

/**
 * One read. `reusable`: the chunk is a view into this socket's own slab, which the sink may hand on as it
 * is; it returns true if it still holds it afterwards. Otherwise the sink must copy what it keeps.
 */
export type ChunkSink = (chunk: Buffer, reusable: boolean) => boolean

export interface TargetReads {
  /** The `onread` option for `net.connect`. */
  readonly onread: { buffer: () => Buffer; callback: (bytes: number, buffer: Buffer) => boolean }
  /**
   * Starts delivering reads to `sink`; bytes that arrived before are delivered first (copies). After a
   * read the sink kept, `whenReleased(done)` must run `done` once the sink holds it no more. `queueBytes`:
   * how much the sink holds at most before it pauses the socket. The caller resumes the socket
   * afterwards unless the sink paused it.
   */
  attach(
    socket: Socket,
    sink: ChunkSink,
    whenReleased: (done: () => void) => void,
    queueBytes: number,
  ): void
}

/**
 * Which reader a socket was dialled with: a property of the socket rather than a WeakMap entry, which
 * would cost every tunnel a slot in a table the collector must sweep.
 */
const kTargetReads = Symbol('gangway.targetReads')

interface WithTargetReads {
  [kTargetReads]?: TargetReads
}

/** The reused-buffer reader of a socket dialled with it, if any. */
export function targetReads(socket: Socket): TargetReads | undefined {
  return (socket as WithTargetReads)[kTargetReads]
}

/** Remembers which reader a socket was created with (called by the dialler). */
export function registerTargetReads(socket: Socket, reads: TargetReads): void {
  ;(socket as WithTargetReads)[kTargetReads] = reads
}

/**
 * An idle socket (or one with small reads: a terminal, a query) reads into the shared buffer and costs no
 * memory of its own; a bulk transfer reads into slabs of its own (relay/read-buffers).
 */
export function createTargetReads(): TargetReads {
  /** Made at the first bulk read: until then (an idle or interactive tunnel) the shared buffer. */
  let buffers: ReadBuffers | undefined
  let queueBytes = 0
  let sink: ChunkSink | undefined
  let whenReleased: ((done: () => void) => void) | undefined
  /** Bytes read before the bridge attached (at most one read: the socket pauses on it). */
  const early: Buffer[] = []

  function nextBuffer(): Buffer {
    return buffers === undefined ? sharedReadBuffer() : buffers.next()
  }

  function targetOnRead(bytes: number, buffer: Buffer): boolean {
    const chunk = buffer.subarray(0, bytes)
    if (sink === undefined) {
      early.push(Buffer.from(chunk))
      void buffers?.done(bytes, buffer, false)
      return false // before the bridge attaches: pause on the first read
    }
    if (buffers === undefined) {
      sink(chunk, false) // the shared buffer: the sink copies
      if (bytes >= BULK_READ) buffers = new ReadBuffers(queueBytes, true)
      return true
    }
    const kept = sink(chunk, !buffers.isShared(buffer))
    const giveBack = buffers.done(bytes, buffer, kept)
    if (giveBack !== undefined) (whenReleased as (done: () => void) => void)(giveBack)
    return true
  }

  return {
    onread: { buffer: nextBuffer, callback: targetOnRead },
    attach(socket, to, released, bytes) {
      sink = to
      whenReleased = released
      queueBytes = bytes
      for (const chunk of early.splice(0)) {
        if (socket.destroyed) return
        to(chunk, false)
      }
    },
  }
}
