/**
 * @module relay/target-reads
 * Reads from a target socket into a reused buffer (net's `onread`) instead of the fresh 64 KiB buffer Node
 * allocates for every read. The profile of a download showed that allocation (page faults, malloc, the
 * garbage collector's work for every read) as the largest cost left outside the kernel.
 *
 * Reusing a buffer is only safe while nobody still holds the bytes of the previous read. Small reads go
 * into one buffer shared by every target socket and are always copied out at once. Large reads go into a
 * buffer of the socket's own, and the bridge hands `ws` a view of it only when the WebSocket has nothing
 * queued (the kernel then usually takes the frame in the same call), or when the read is large; if ws
 * keeps the frame, the bridge calls `release()` and the next read goes into a new buffer. Small reads
 * into a queue, and bytes that may be kept elsewhere (a recording, gangway.v1's credit, deflate), are
 * copied.
 * Knows nothing of WebSockets or tokens.
 */
import type { Socket } from 'node:net'

/** One read at most: the size Node's own reads use. */
const READ_SIZE = 64 * 1024
/** A read at least this large suggests a bulk transfer: the socket then reads into a buffer of its own. */
export const BULK_READ = 32 * 1024

/**
 * Shared by every target socket of the process for small reads (and before the first read): its bytes
 * are always copied out in the read callback, before any other socket can read into it.
 */
const SHARED = Buffer.allocUnsafeSlow(READ_SIZE)

/** `reusable`: the chunk is a view into this socket's own buffer, which the sink may hand on as it is
 * (calling `release()` if it ends up kept); otherwise the sink must copy what it keeps. */
export type ChunkSink = (chunk: Buffer, reusable: boolean) => void

export interface TargetReads {
  /** The `onread` option for `net.connect`. */
  readonly onread: { buffer: () => Buffer; callback: (bytes: number, buffer: Buffer) => boolean }
  /**
   * Starts delivering reads to `sink`; bytes that arrived before are delivered first (copies). The
   * caller resumes the socket afterwards unless the sink paused it.
   */
  attach(socket: Socket, sink: ChunkSink): void
  /** The socket's own buffer now belongs to someone else: the next read goes into a new one. */
  release(): void
}

const readsBySocket = new WeakMap<Socket, TargetReads>()

/** The reused-buffer reader of a socket dialled with it, if any. */
export function targetReads(socket: Socket): TargetReads | undefined {
  return readsBySocket.get(socket)
}

/** Remembers which reader a socket was created with (called by the dialler). */
export function registerTargetReads(socket: Socket, reads: TargetReads): void {
  readsBySocket.set(socket, reads)
}

/**
 * An idle socket (or one with small reads: a terminal, a query) reads into the shared buffer and costs no
 * memory of its own; a socket whose reads fill half a buffer or more gets its own, reused read after read
 * while nothing keeps it. It keeps that buffer until a small read, so a tunnel that goes quiet right
 * after a bulk transfer holds 64 KiB until its next read.
 */
export function createTargetReads(): TargetReads {
  let next: Buffer = SHARED
  let own: Buffer | undefined
  let released = false
  let sink: ChunkSink | undefined
  /** Bytes read before the bridge attached (at most one read: the socket pauses on it). */
  const early: Buffer[] = []

  function nextBuffer(): Buffer {
    return next
  }

  function targetOnRead(bytes: number, buffer: Buffer): boolean {
    const chunk = buffer.subarray(0, bytes)
    released = false
    if (sink === undefined) early.push(Buffer.from(chunk))
    else sink(chunk, buffer !== SHARED)
    if (bytes >= BULK_READ) {
      if (own === undefined || released) own = Buffer.allocUnsafeSlow(READ_SIZE)
      next = own
    } else {
      own = undefined
      next = SHARED
    }
    return sink !== undefined // before the bridge attaches: pause on the first read
  }

  return {
    onread: { buffer: nextBuffer, callback: targetOnRead },
    attach(socket, to) {
      sink = to
      for (const chunk of early.splice(0)) {
        if (socket.destroyed) return
        to(chunk, false)
      }
    },
    release() {
      released = true
    },
  }
}
