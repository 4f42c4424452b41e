/**
 * @module gangway/connect
 * `connect()`: a TCP socket over a Gangway WebSocket, shaped like Cloudflare's / WinterCG's `connect()`
 * (`readable`, `writable`, `opened`, `closed`, `close()`). Speaks `gangway.v1` (docs/protocol.md): open
 * info, half-close, receive credit; falls back to raw mode against an old daemon.
 */

import {
  INITIAL_CREDIT,
  SUBPROTOCOL_BEARER_PREFIX,
  SUBPROTOCOL_BINARY,
  SUBPROTOCOL_V1,
} from '../src/protocol.js'
import { CLOSE_CODES, TunnelError, type TunnelErrorCode } from './tunnel-error.js'

/** What `opened` resolves to: the daemon's TCP leg (v1), or nothing but the protocol (raw mode). */
export interface SocketInfo {
  readonly remoteAddress?: string
  readonly remotePort?: number
  readonly localAddress?: string
  readonly localPort?: number
  /** The selected subprotocol: `gangway.v1`, `binary` or ''. */
  readonly protocol: string
}

/**
 * The part of a WebSocket the shim uses: the browser's class, `ws`'s, undici's or a `TunnelWebSocket` fit
 * without a cast. (The shim only assigns the handlers, so their event types are left open: `never`.)
 */
export interface WebSocketLike {
  binaryType: string
  readonly bufferedAmount: number
  readonly protocol: string
  readonly readyState: number
  onopen: ((event: never) => void) | null
  onmessage: ((event: never) => void) | null
  onclose: ((event: never) => void) | null
  onerror: ((event: never) => void) | null
  send(data: string | Uint8Array): void
  close(code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike

/** `'host:port'`, `{ hostname, port }`, `{ route }`, or '' for the daemon's own target. */
export type Address = string | { hostname: string; port: number } | { route: string }

export interface ConnectOptions {
  /** The daemon's WebSocket endpoint, e.g. `wss://gw.example.com/`. */
  url: string | URL
  /** Bearer token, or a function called once per connection (sent as a `gangway.bearer.` subprotocol). */
  token?: string | (() => string | Promise<string>)
  /** Keep the writable open after the target's EOF (default false: EOF ends both sides). */
  allowHalfOpen?: boolean
  /** Bytes: the send buffer limit and the receive window (default 1 MiB). */
  highWaterMark?: number
  /** Milliseconds until the TCP connection must be open (default 15000; 0 = none). */
  connectTimeout?: number
  /** Milliseconds `close()` / `writer.close()` may take to send what was accepted (default 30000; 0 = none). */
  closeTimeout?: number
  signal?: AbortSignal
  /** The WebSocket class (default `globalThis.WebSocket`; in Node 20 pass `ws`'s). */
  WebSocket?: WebSocketConstructor
}

/** How a tunnel ended cleanly: the close code and reason of the daemon's (or our) close frame. */
export interface CloseInfo {
  readonly code: number
  readonly reason: string
}

export interface TunnelSocket {
  readonly readable: ReadableStream<Uint8Array>
  /** Takes any BufferSource (copied); anything else rejects that write with a TypeError. */
  readonly writable: WritableStream<BinaryChunk>
  /** Resolves when the TCP connection is up; rejects with a `TunnelError`. */
  readonly opened: Promise<SocketInfo>
  /** Resolves on a clean end with the WebSocket close code and reason; rejects with a `TunnelError`. */
  readonly closed: Promise<CloseInfo>
  /**
   * Resolves when the daemon announces a drain (it shuts down and closes this tunnel with 1001 within the
   * milliseconds it resolves to), so the application can reconnect early. Never settles otherwise.
   */
  readonly draining: Promise<number>
  /**
   * Sends every byte already accepted (within `closeTimeout`), then closes both directions with the given
   * WebSocket close `code` (default 1000) and `reason` (both reach the daemon's log). Later writes reject.
   * Resolves when done, never rejects: `closed` says how it ended.
   */
  close: (code?: number, reason?: string) => Promise<void>
}

/** Largest coalesced message; writes at least this big are sent as they are. */
const COALESCE_BYTES = 65_536

export const noop = (): void => {}

const settle = <T>(p: Promise<T>): Promise<T> => (p.catch(noop), p)

/** What the writable takes: any BufferSource, including views of a Node Buffer's pool. */
export type BinaryChunk = ArrayBuffer | ArrayBufferView

/** Throws a TypeError for anything but a BufferSource. */
function checkBinary(chunk: unknown): asserts chunk is BinaryChunk {
  if (!(chunk instanceof ArrayBuffer || ArrayBuffer.isView(chunk)))
    throw new TypeError('write() takes a BufferSource')
}

/** A copy of the bytes of any BufferSource (a view's window, or a whole buffer). */
export const copy = (chunk: BinaryChunk | ArrayBufferLike): Uint8Array =>
  new Uint8Array(
    'buffer' in chunk ? chunk.buffer : chunk,
    (chunk as ArrayBufferView).byteOffset,
    chunk.byteLength,
  ).slice()

/** Opens a TCP connection through the daemon at `options.url`. Writes before `opened` are queued. */
export function connect(address: Address, options: ConnectOptions): TunnelSocket {
  const hwm = options.highWaterMark ?? 1 << 20
  let ws: WebSocketLike | undefined
  let v1 = false
  let done = false // no more bytes either way: ended cleanly, or failed (then `error` says why)
  let ended = false // our writing is over (close(), writer.close(), the target's eof): later writes reject
  let error: TunnelError | undefined
  let sent: number | undefined // the code of our close frame
  let closing: Promise<void> | undefined
  let eof: Promise<void> | undefined
  let queue: Uint8Array[] = []
  let queued = 0
  let flushTimer: ReturnType<typeof setTimeout> | undefined
  let granted = INITIAL_CREDIT
  let window = Infinity // bytes the daemon lets us send (v1 credit; raw mode: no limit)
  let received = 0
  let rc!: ReadableByteStreamController
  let resolveOpened!: (info: SocketInfo) => void
  let rejectOpened!: (err: TunnelError) => void
  let resolveClosed!: (info: CloseInfo) => void
  let rejectClosed!: (err: TunnelError) => void
  const opened = settle(
    new Promise<SocketInfo>((y, n) => ((resolveOpened = y), (rejectOpened = n))),
  )
  const closed = settle(new Promise<CloseInfo>((y, n) => ((resolveClosed = y), (rejectClosed = n))))
  let draining!: (ms: number) => void
  const drain = new Promise<number>((y) => (draining = y))
  const timeout = options.connectTimeout ?? 15_000
  const timer = timeout ? setTimeout(() => fail('TIMEOUT'), timeout) : undefined
  const signal = options.signal
  const onAbort = (): void => fail('ABORTED', 0, String(signal!.reason))
  signal?.addEventListener('abort', onAbort)

  // A byte stream: `getReader({ mode: 'byob' })` reads into the caller's buffers.
  const readable = new ReadableStream(
    { type: 'bytes', start: (c) => void (rc = c), pull: grant, cancel: () => close() },
    { highWaterMark: hwm },
  )
  const writable = new WritableStream<BinaryChunk>({
    start(c) {
      // Fires at once, even while a write waits for room (the stream's own abort() would wait for it).
      // (Node's type definitions lack the controller's `signal`; every runtime the core supports has it.)
      const { signal } = c as WritableStreamDefaultController & { signal: AbortSignal }
      signal.addEventListener('abort', () => fail('ABORTED', 0, String(signal.reason)))
    },
    async write(chunk) {
      checkBinary(chunk)
      if (error) throw error
      if (ended) throw new TunnelError('CLOSED', 0, 'write after close')
      // A copy: the caller may reuse its buffer once the write resolves.
      const bytes = copy(chunk)
      queue.push(bytes)
      queued += bytes.byteLength
      if (queued >= COALESCE_BYTES) flush()
      else flushTimer ??= setTimeout(flush, 0)
      // Send backpressure: hold the write while more than the high-water mark waits to go out.
      await waitWhile(() => queued + (ws?.bufferedAmount ?? 0) > hwm)
    },
    close: () => endWrite(),
  })
  // A chunk that is not bytes rejects its own write and leaves the stream usable (a sink error would not).
  const getWriter = writable.getWriter.bind(writable)
  writable.getWriter = () => {
    const writer = getWriter()
    const write = writer.write.bind(writer)
    // async: whatever the stream throws (Node 20 asserts on a second write after close()) rejects instead.
    writer.write = async (chunk) => {
      checkBinary(chunk)
      return write(chunk)
    }
    return writer
  }

  if (signal?.aborted) onAbort()
  else void start()

  async function start(): Promise<void> {
    // `binary` too: an older Gangway or websockify then answers in raw mode (ws fails on no answer).
    const protocols = [SUBPROTOCOL_V1, SUBPROTOCOL_BINARY]
    const global = globalThis as { WebSocket?: WebSocketConstructor; location?: { href: string } }
    let url: URL
    try {
      // Relative to the page (`'/'`), and http(s): becomes ws(s):, so one URL works on http and https.
      url = new URL(options.url, global.location?.href)
    } catch {
      return fail('BAD_OPTION', 0, `url '${options.url.toString()}': not a URL`)
    }
    url.protocol = url.protocol.replace('http', 'ws')
    const query = url.searchParams
    if (typeof address == 'string') {
      if (address) query.set('address', address)
    } else if ('route' in address) query.set('route', address.route)
    else {
      const h = address.hostname
      query.set('address', `${h.includes(':') ? `[${h}]` : h}:${address.port}`)
    }
    const WS = options.WebSocket ?? global.WebSocket
    if (!WS) return fail('BAD_OPTION', 0, 'no WebSocket: pass options.WebSocket')
    try {
      const token = typeof options.token == 'function' ? await options.token() : options.token
      if (token) protocols.push(SUBPROTOCOL_BEARER_PREFIX + base64url(token))
    } catch (err) {
      return fail('TOKEN_ERROR', 0, String(err))
    }
    if (done) return
    try {
      ws = new WS(url.href, protocols)
    } catch (err) {
      // A URL the WebSocket class refuses (an ftp: scheme), or no WebSocket class at all: `opened` says so.
      return fail('NETWORK', 0, String(err))
    }
    ws.binaryType = 'arraybuffer'
    ws.onopen = onOpen
    ws.onmessage = onMessage
    ws.onclose = onClose
    ws.onerror = noop
  }

  /**
   * Polls (1 → 16 ms) while `busy()`: a WebSocket has no drain event. Rejects if the tunnel fails; resolves
   * if it ended cleanly (every accepted byte was sent before the close frame).
   */
  async function waitWhile(busy: () => boolean): Promise<void> {
    for (let delay = 1; busy(); delay = Math.min(delay * 2, 16)) {
      if (error) throw error
      if (done) return
      await new Promise((r) => setTimeout(r, delay))
    }
  }

  function onOpen(): void {
    v1 = ws!.protocol == SUBPROTOCOL_V1
    if (v1) {
      window = INITIAL_CREDIT
      grant()
    } else opening({ protocol: ws!.protocol })
    flush()
  }

  function opening(info: SocketInfo): void {
    clearTimeout(timer)
    resolveOpened(info)
  }

  function onMessage({ data }: { data: unknown }): void {
    if (typeof data == 'string') {
      if (!v1) return
      let m: { type: string; bytes: number; ms: number } & SocketInfo
      try {
        m = JSON.parse(data) as typeof m
      } catch {
        // Not Gangway (a server that echoes any subprotocol): no exception out of the message handler.
        return fail('BAD_MESSAGE', 0, 'not JSON')
      }
      if (m.type == 'credit') {
        window += m.bytes
        flush()
      } else if (m.type == 'open') {
        const { type: _, bytes: __, ms: ___, ...info } = m
        opening({ ...info, protocol: SUBPROTOCOL_V1 })
      } else if (m.type == 'drain') {
        draining(m.ms)
      } else if (m.type == 'eof') {
        closeStream(rc)
        // Our end follows; if the tunnel closes before our queued bytes are out, `closed` tells the caller.
        if (!options.allowHalfOpen) endWrite().catch(noop)
      }
      return
    }
    const chunk = new Uint8Array(data as ArrayBuffer)
    received += chunk.byteLength
    if (done) return
    if (chunk.byteLength) rc.enqueue(chunk) // (a byte stream refuses an empty chunk)
    // Raw mode cannot stop the daemon: past 8 windows of unread data, give up rather than grow forever.
    if (rc.desiredSize! < -8 * Math.max(hwm, INITIAL_CREDIT)) fail('OVERFLOW')
  }

  function onClose({ code, reason }: { code: number; reason: string }): void {
    const clean = code == 1000 || code == 1005
    // The daemon answered our close frame (echoing its code: every byte we sent is with the target), or
    // closed cleanly itself with nothing of ours left unsent.
    if (code == sent || (clean && !queued)) {
      resolveClosed({ code, reason })
      finish()
    }
    // A clean close by the daemon (raw mode: the target's FIN) while bytes still wait here: they are lost.
    else if (clean) fail('CLOSED', code, `${queued} bytes not sent`)
    else fail(CLOSE_CODES[code] ?? 'UNKNOWN', code, reason)
  }

  /** Receive credit: keep (window left at the daemon) + (bytes queued here) within the high-water mark. */
  function grant(): void {
    if (!v1 || done || ws?.readyState != 1) return
    const more = rc.desiredSize! - (granted - received)
    if (more >= hwm / 2 || (granted == INITIAL_CREDIT && more > 0)) {
      granted += more
      ws.send(`{"type":"credit","bytes":${more}}`)
    }
  }

  function flush(): void {
    clearTimeout(flushTimer)
    flushTimer = undefined
    if (ws?.readyState != 1 || !queued || window <= 0) return
    let message = queue[0]!
    if (queue.length > 1) {
      message = new Uint8Array(queued)
      let at = 0
      for (const part of queue) message.set(part, (at += part.byteLength) - part.byteLength)
    }
    const n = Math.min(queued, window)
    queue = n < queued ? [message.subarray(n)] : []
    queued -= n
    window -= n
    ws.send(message.subarray(0, n))
  }

  /** Sends every accepted byte (waiting for open and credit), within `closeTimeout`. */
  async function flushAll(): Promise<void> {
    ended = true
    if (!queued) return
    const limit = options.closeTimeout ?? 30_000
    const t = limit ? setTimeout(() => fail('TIMEOUT', 0, `${queued} bytes not sent`), limit) : 0
    try {
      await opened
      flush()
      await waitWhile(() => queued > 0)
    } finally {
      clearTimeout(t)
    }
  }

  /** Our side is done writing: `eof` in v1, a close in raw mode (which cannot half-close). */
  function endWrite(): Promise<void> {
    return (eof ??= flushAll().then(async () => {
      await opened
      if (done) return
      if (v1) ws!.send('{"type":"eof"}')
      else finish()
    }))
  }

  /** Both directions: sends what was accepted, then closes the WebSocket with `code` and `reason`. */
  function close(code?: number, reason?: string): Promise<void> {
    closing ??= flushAll().then(
      () => finish(code, reason),
      noop, // failed: `closed` says why
    )
    return closed.then(noop, noop)
  }

  function fail(code: TunnelErrorCode, closeCode = 0, reason = ''): void {
    if (error) return
    error = new TunnelError(code, closeCode, reason)
    rc.error(error) // (a no-op once the readable is closed)
    rejectOpened(error)
    rejectClosed(error)
    finish(1000, code) // our failure: the daemon logs its code as the close reason
  }

  /** The one teardown path. `closed` settles here, or on the daemon's answer to our close frame. */
  function finish(code = 1000, reason = ''): void {
    if (done) return
    done = true
    ended = true
    clearTimeout(timer)
    clearTimeout(flushTimer)
    signal?.removeEventListener('abort', onAbort)
    rejectOpened(new TunnelError('ABORTED', 0, 'closed before open'))
    closeStream(rc)
    if (ws?.readyState == 1) ws.close((sent = code), reason)
    // Closing: the daemon's close frame is in, and onClose settles `closed` with its code.
    else if (ws?.readyState != 2) {
      ws?.close()
      resolveClosed({ code, reason })
    }
  }

  return { readable, writable, opened, closed, draining: drain, close }
}

function closeStream(c: ReadableByteStreamController): void {
  try {
    c.close()
    c.byobRequest?.respond(0) // a pending BYOB read ends (done) only when answered
  } catch {
    // already closed or errored
  }
}

function base64url(text: string): string {
  const b64 = btoa(String.fromCharCode(...new TextEncoder().encode(text)))
  return b64.replace(/[+/=]/g, (c) => (c == '+' ? '-' : c == '/' ? '_' : ''))
}
