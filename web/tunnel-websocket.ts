/**
 * @module gangway/tunnel-websocket
 * `TunnelWebSocket`: the WebSocket-shaped facade over `connect()`, for code that takes a WebSocket.
 */
import {
  connect,
  noop,
  type Address,
  type BinaryChunk,
  type ConnectOptions,
  type TunnelSocket,
} from './connect.js'
import type { TunnelError } from './tunnel-error.js'

type Listener = ((event: Event) => void) | null

/**
 * A WebSocket-shaped facade over `connect()`: hand it to code that takes a WebSocket (noVNC's `RFB`,
 * xterm's attach addon). `open` fires when the TCP connection is up; messages are the target's bytes;
 * `close` carries the daemon's code and reason, and the `TunnelError` as `error`.
 */
export class TunnelWebSocket extends EventTarget {
  static readonly CONNECTING = 0
  static readonly OPEN = 1
  static readonly CLOSING = 2
  static readonly CLOSED = 3
  readyState = 0
  binaryType = 'arraybuffer'
  protocol = ''
  extensions = ''
  url: string
  onopen: Listener = null
  onmessage: Listener = null
  onclose: Listener = null
  onerror: Listener = null
  private pending = 0
  private last: Promise<unknown> = Promise.resolve()
  private readonly socket: TunnelSocket
  private readonly writer: WritableStreamDefaultWriter<BinaryChunk>

  constructor(address: Address, options: ConnectOptions) {
    super()
    this.url = String(options.url)
    const socket = (this.socket = connect(address, options))
    this.writer = socket.writable.getWriter()
    socket.opened
      .then(async (info) => {
        this.readyState = 1
        this.protocol = info.protocol
        this.fire('open')
        const reader = socket.readable.getReader()
        for (let r; !(r = await reader.read()).done;) {
          const bytes = r.value
          const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
          this.fire('message', {
            data: this.binaryType == 'blob' ? new Blob([data as ArrayBuffer]) : data,
          })
        }
      }, noop)
      // A failed tunnel rejects the pending read: `error` and `close` report it, nothing else may.
      .catch(noop)
    socket.closed.then(
      ({ code, reason }) => this.ended(code, reason, true),
      (err: TunnelError) => {
        this.fire('error', { error: err })
        this.ended(err.closeCode || 1006, err.reason, false, err)
      },
    )
  }

  get bufferedAmount(): number {
    return this.pending
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.readyState == 0) throw new DOMException('still connecting', 'InvalidStateError')
    if (this.readyState > 1) return
    // A copy: callers reuse their buffers as soon as send() returns (noVNC does), as a WebSocket allows.
    const bytes =
      typeof data == 'string'
        ? new TextEncoder().encode(data)
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice()
          : new Uint8Array(data.slice(0))
    this.pending += bytes.byteLength
    this.last = this.writer.write(bytes).then(() => (this.pending -= bytes.byteLength), noop)
  }

  /** As a WebSocket's: what `send()` was given is still delivered, then the tunnel closes. */
  close(code?: number, reason?: string): void {
    if (code != null && code != 1000 && (code < 3000 || code > 4999))
      throw new DOMException(`close code ${code}`, 'InvalidAccessError')
    if (this.readyState > 1) return
    this.readyState = 2
    void this.last.then(() => this.socket.close(code, reason))
  }

  private ended(code: number, reason: string, wasClean: boolean, error?: TunnelError): void {
    this.readyState = 3
    this.fire('close', { code, reason, wasClean, error })
  }

  private fire(type: 'open' | 'message' | 'close' | 'error', props?: object): void {
    const event = Object.assign(new Event(type), props)
    this[`on${type}`]?.call(this, event)
    this.dispatchEvent(event)
  }
}
