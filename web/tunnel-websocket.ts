/**
 * @module gangway/tunnel-websocket
 * `TunnelWebSocket`: the WebSocket facade over `connect()`, for code that takes a WebSocket.
 */
import {
  connect,
  copy,
  noop,
  type Address,
  type BinaryChunk,
  type ConnectOptions,
} from './connect.js'
import type { TunnelError } from './tunnel-error.js'

type Handler<E> = ((this: WebSocket, event: E) => unknown) | null

/** A `close` event: the daemon's (or our) close code and reason, and the `TunnelError` of a failure. */
export interface TunnelCloseEvent extends Event {
  readonly code: number
  readonly reason: string
  readonly wasClean: boolean
  readonly error?: TunnelError
}

/** The events of a `TunnelWebSocket`; `draining` is its own (docs/shim.md), the rest a WebSocket's. */
export interface TunnelWebSocketEventMap {
  open: Event
  message: MessageEvent
  close: TunnelCloseEvent
  error: Event
  draining: Event & { readonly ms: number }
}

type ListenerOptions = boolean | { capture?: boolean; once?: boolean; passive?: boolean }
type AnyListener = ((event: Event) => void) | { handleEvent(event: Event): void } | null

/**
 * A WebSocket over `connect()`: hand it to code that takes a WebSocket (noVNC's `RFB`, xterm's attach
 * addon); it implements the DOM `WebSocket` interface. `open` fires when the TCP connection is up; messages
 * are the target's bytes; `close` carries the daemon's code and reason, and the `TunnelError` as `error`.
 * Also fires `draining` (`event.ms`) when the daemon announces a shutdown.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TunnelWebSocket extends EventTarget implements WebSocket {
  static readonly CONNECTING = 0
  static readonly OPEN = 1
  static readonly CLOSING = 2
  static readonly CLOSED = 3
  // Own properties, as a browser WebSocket has them on its prototype: noVNC checks own and prototype keys.
  readonly CONNECTING = 0
  readonly OPEN = 1
  readonly CLOSING = 2
  readonly CLOSED = 3
  readyState: number = 0
  binaryType: 'blob' | 'arraybuffer' = 'arraybuffer'
  protocol = ''
  extensions = ''
  /** Bytes given to `send()` that the tunnel has not accepted yet. */
  bufferedAmount = 0
  readonly url: string
  onopen: Handler<Event> = null
  onmessage: Handler<MessageEvent> = null
  onclose: Handler<TunnelCloseEvent> = null
  onerror: Handler<Event> = null
  #writer: WritableStreamDefaultWriter<BinaryChunk>
  #close: (code?: number, reason?: string) => Promise<void>
  #last: Promise<unknown> = Promise.resolve()

  constructor(address: Address, options: ConnectOptions) {
    super()
    this.url = options.url.toString()
    const socket = connect(address, options)
    this.#close = socket.close
    this.#writer = socket.writable.getWriter()
    socket.opened
      .then(async (info) => {
        this.readyState = 1
        this.protocol = info.protocol
        this.#fire('open')
        const reader = socket.readable.getReader()
        for (let r; !(r = await reader.read()).done;) {
          // A copy: noVNC's decoder misreads the stream's transferred buffer in Chromium (test/clients).
          const data = r.value.slice().buffer
          this.#fire('message', { data: this.binaryType == 'blob' ? new Blob([data]) : data })
        }
      }, noop)
      // A failed tunnel rejects the pending read: `error` and `close` report it, nothing else may.
      .catch(noop)
    void socket.draining.then((ms) => this.#fire('draining', { ms }))
    socket.closed.then(
      ({ code, reason }) => this.#ended(code, reason, true),
      (err: TunnelError) => {
        this.#fire('error', { error: err })
        this.#ended(err.closeCode || 1006, err.reason, false, err)
      },
    )
  }

  /** Text goes as UTF-8 bytes; a Blob is read first (in order with the other sends). */
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (!this.readyState) throw new DOMException('', 'InvalidStateError')
    if (this.readyState > 1) return
    // A copy: callers reuse their buffers as soon as send() returns (noVNC does), as a WebSocket allows.
    const bytes =
      typeof data == 'string'
        ? new TextEncoder().encode(data)
        : data instanceof Blob
          ? data
          : copy(data)
    const size = 'size' in bytes ? bytes.size : bytes.byteLength
    this.bufferedAmount += size
    this.#last = this.#last.then(async () =>
      this.#writer
        .write('size' in bytes ? await bytes.arrayBuffer() : bytes)
        .then(() => (this.bufferedAmount -= size), noop),
    )
  }

  /** As a WebSocket's: what `send()` was given is still delivered, then the tunnel closes. */
  close(code?: number, reason?: string): void {
    if (code != null && code != 1000 && (code < 3000 || code > 4999))
      throw new DOMException(`code ${code}`, 'InvalidAccessError')
    if (this.readyState > 1) return
    this.readyState = 2
    void this.#last.then(() => this.#close(code, reason))
  }

  #ended(code: number, reason: string, wasClean: boolean, error?: TunnelError): void {
    this.readyState = 3
    this.#fire('close', { code, reason, wasClean, error })
  }

  #fire(type: string, props?: object): void {
    const event = Object.assign(new Event(type), props)
    // (no `ondraining`: that one is only for addEventListener)
    ;(this as unknown as Record<string, Handler<Event> | undefined>)[`on${type}`]?.call(this, event)
    this.dispatchEvent(event)
  }
}

/** Listeners typed as a WebSocket's (`message` → `MessageEvent`, `close` → `TunnelCloseEvent`). */
// Only adds overload signatures to the methods inherited from EventTarget: nothing to implement.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface TunnelWebSocket {
  addEventListener<K extends keyof TunnelWebSocketEventMap>(
    type: K,
    listener: (this: TunnelWebSocket, event: TunnelWebSocketEventMap[K]) => unknown,
    options?: ListenerOptions,
  ): void
  addEventListener(type: string, listener: AnyListener, options?: ListenerOptions): void
  removeEventListener<K extends keyof TunnelWebSocketEventMap>(
    type: K,
    listener: (this: TunnelWebSocket, event: TunnelWebSocketEventMap[K]) => unknown,
    options?: ListenerOptions,
  ): void
  removeEventListener(type: string, listener: AnyListener, options?: ListenerOptions): void
}
