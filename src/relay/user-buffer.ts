/**
 * @module relay/user-buffer
 * Switches a socket that already exists (one the server accepted) to net's `onread` mode: each read lands
 * in a buffer the caller supplies and is handed to a callback, instead of a fresh buffer per read pushed
 * through the stream. `net.connect({ onread })` is the public way, but only for sockets we dial; an
 * accepted socket has no such option. This module is the one place that reaches into Node for it.
 *
 * What it relies on (Node's lib/net.js and lib/internal/stream_base_commons.js, the same in every Node
 * release since 12, pinned by test/unit/user-buffer.test.ts for the versions in `engines`):
 * - a `net.Socket` created with `onread` keeps it in three own symbol properties named `kBuffer`,
 *   `kBufferCb` and `kBufferGen`, which `onStreamRead`, `pause()` and `resume()` consult on every read;
 * - its libuv handle (`_handle`) has `useUserBuffer(buffer)`, which makes the next read land in `buffer`;
 * - in that mode its stream never gets a `push()` after the first `_read()`, so the stream's
 *   `_readableState.reading` stays true and the stream machinery never calls `_read()` again (which would
 *   start the handle even while paused). A socket switched over later is put in that same state.
 * When either is missing (another runtime, a TLS socket, a socket without a handle) nothing is changed and
 * the caller keeps reading through 'data' events. Knows nothing of WebSockets or targets.
 */
import { Socket } from 'node:net'

export interface UserBufferReads {
  /** The buffer the next read goes into (called before each read). */
  readonly buffer: () => Buffer
  /** One read of `bytes` bytes into `buffer`; its bytes are valid only until the next read. */
  readonly callback: (bytes: number, buffer: Buffer) => boolean
}

interface OnreadSymbols {
  readonly buffer: symbol
  readonly callback: symbol
  readonly generator: symbol
}

interface StreamHandle {
  useUserBuffer?: (buffer: Uint8Array) => void
  reading?: boolean
}

let symbols: OnreadSymbols | null | undefined

/** Finds net's private onread properties on a socket made with the public option (no handle is opened). */
function onreadSymbols(): OnreadSymbols | null {
  if (symbols !== undefined) return symbols
  // The constructor reads `onread` as connect() does; @types/node only declares it for connect().
  const options = { onread: { buffer: () => Buffer.alloc(1), callback: () => true } }
  const probe = new Socket(options as ConstructorParameters<typeof Socket>[0])
  const named = new Map<string, symbol>()
  for (const symbol of Object.getOwnPropertySymbols(probe)) {
    if (symbol.description !== undefined) named.set(symbol.description, symbol)
  }
  probe.destroy()
  const buffer = named.get('kBuffer')
  const callback = named.get('kBufferCb')
  const generator = named.get('kBufferGen')
  symbols =
    buffer !== undefined && callback !== undefined && generator !== undefined
      ? { buffer, callback, generator }
      : null
  return symbols
}

/**
 * Makes every later read of `socket` go through `reads`, as if it had been created with
 * `onread: { buffer: reads.buffer, callback: reads.callback }`. Bytes already buffered in the stream are
 * still delivered as 'data' events. Returns false, changing nothing, when the socket cannot (see above).
 */
export function readIntoUserBuffers(socket: Socket, reads: UserBufferReads): boolean {
  // A TLS socket's handle decrypts: its reads are not the socket's bytes.
  if ((socket as { encrypted?: boolean }).encrypted === true) return false
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle
  if (handle == null || typeof handle.useUserBuffer !== 'function') return false
  const found = onreadSymbols()
  if (found === null) return false
  const first = reads.buffer()
  const fields = socket as unknown as Record<symbol, unknown>
  fields[found.generator] = reads.buffer
  fields[found.callback] = reads.callback
  fields[found.buffer] = first
  handle.useUserBuffer(first)
  // As if its first `_read()` had happened in this mode: from now on only resume() starts the handle.
  const state = (socket as unknown as { _readableState?: { reading: boolean } })._readableState
  if (state !== undefined) state.reading = true
  return true
}
