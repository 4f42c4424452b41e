/**
 * @module gangway/node
 * A `net.Socket`-like Duplex over the tunnel, for Node drivers that accept a socket (pg's `stream`, an
 * ioredis `Connector`, `@xmpp/client`, `tls.connect({ socket })`). Tunnel errors become the errno codes
 * drivers already handle: ECONNREFUSED, ETIMEDOUT, ECONNRESET, EACCES.
 */
import { Duplex } from 'node:stream'
import {
  connect,
  TunnelError,
  type Address,
  type BinaryChunk,
  type ConnectOptions,
  type TunnelErrorCode,
  type TunnelSocket,
} from '../gangway.js'

export { TunnelError, type ConnectOptions, type Address } from '../gangway.js'

const ERRNO: Partial<Record<TunnelErrorCode, string>> = {
  TARGET_REFUSED: 'ECONNREFUSED',
  TARGET_UNREACHABLE: 'ECONNREFUSED',
  THROTTLED: 'ECONNREFUSED',
  TARGET_TIMEOUT: 'ETIMEDOUT',
  IDLE_TIMEOUT: 'ETIMEDOUT',
  TIMEOUT: 'ETIMEDOUT',
  AUTH_FAILED: 'EACCES',
  FORBIDDEN: 'EACCES',
}

/** An errno-style error for a tunnel failure; the `TunnelError` stays reachable as `cause`/`tunnelCode`. */
export interface TunnelErrnoError extends Error {
  code: string
  syscall: 'connect'
  tunnelCode: TunnelErrorCode
  closeCode: number
}

export function toErrnoError(err: unknown): TunnelErrnoError {
  const tunnel = err instanceof TunnelError ? err : new TunnelError('UNKNOWN', 0, String(err))
  const code = ERRNO[tunnel.code] ?? 'ECONNRESET'
  return Object.assign(new Error(`${code}: ${tunnel.message}`, { cause: tunnel }), {
    code,
    syscall: 'connect' as const,
    tunnelCode: tunnel.code,
    closeCode: tunnel.closeCode,
  })
}

export interface NetSocketOptions extends ConnectOptions {
  /**
   * The target named to the daemon. Absent: the `host:port` given to `connect()` (what a driver passes).
   * '' : no address, the daemon's own target.
   */
  address?: Address
}

/**
 * A Duplex that behaves like a connected `net.Socket`: call `connect()` (drivers do), then read and write.
 * Events: `connect` and `ready` once the TCP connection is up, `data`, `end` on the target's EOF, `drain`,
 * `timeout`, `error` (errno-coded), `close`.
 */
export class TunnelNetSocket extends Duplex {
  connecting = false
  pending = true
  remoteAddress?: string
  remotePort?: number
  localAddress?: string
  localPort?: number
  bytesRead = 0
  bytesWritten = 0
  private tunnel?: TunnelSocket
  private writer?: WritableStreamDefaultWriter<BinaryChunk>
  private reader?: ReadableStreamDefaultReader<Uint8Array>
  private reading = false
  private timeoutMs = 0
  private timer?: NodeJS.Timeout

  constructor(private readonly options: NetSocketOptions) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false })
  }

  /** `connect(port, host?, cb?)`, `connect({ port, host }, cb?)` or `connect(cb?)` (options.address). */
  connect(...args: unknown[]): this {
    const cb = args.find((a) => typeof a == 'function') as (() => void) | undefined
    const first = args[0] as { port?: number; host?: string } | number | undefined
    const port = typeof first == 'object' ? first.port : first
    const host = (typeof first == 'object' ? first.host : (args[1] as string)) ?? 'localhost'
    const typed = typeof port == 'number' || typeof port == 'string'
    const address = this.options.address ?? (typed ? `${host}:${port}` : '')
    if (cb) this.once('connect', cb)
    this.connecting = true
    const tunnel = (this.tunnel = connect(address, { ...this.options, allowHalfOpen: true }))
    this.writer = tunnel.writable.getWriter()
    this.reader = tunnel.readable.getReader()
    tunnel.opened.then((info) => {
      this.connecting = false
      this.pending = false
      const { remoteAddress, remotePort, localAddress, localPort } = info
      Object.assign(this, { remoteAddress, remotePort, localAddress, localPort })
      this.arm()
      this.emit('connect')
      this.emit('ready')
    }, this.fail)
    tunnel.closed.catch(this.fail)
    this.emit('tunnel')
    this._read()
    return this
  }

  override _write(chunk: Buffer, _encoding: string, cb: (err?: Error | null) => void): void {
    if (!this.writer) {
      this.once('tunnel', () => this._write(chunk, _encoding, cb))
      return
    }
    this.bytesWritten += chunk.length
    this.arm()
    this.writer.write(chunk).then(
      () => cb(),
      (err) => cb(toErrnoError(err)),
    )
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.writer) return cb()
    this.writer.close().then(
      () => cb(),
      (err) => cb(toErrnoError(err)),
    )
  }

  override _read(): void {
    if (!this.reader || this.reading) return
    this.reading = true
    this.reader.read().then(({ done, value }) => {
      this.reading = false
      if (done) {
        this.push(null)
        return
      }
      this.bytesRead += value.byteLength
      this.arm()
      if (this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))) this._read()
    }, this.fail)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.timer)
    // As net.Socket: destroy(err) drops what waits to be sent; a plain destroy() still sends it, then closes.
    if (err) this.writer?.abort(err).catch(() => {})
    void this.tunnel?.close()
    cb(err)
  }

  private fail = (err: unknown): void => {
    this.destroy(toErrnoError(err))
  }

  /** An idle timer, as `net.Socket`'s: emits `timeout` after `ms` without reads or writes (0 = off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.timeoutMs = ms
    if (cb) this[ms ? 'once' : 'off']('timeout', cb)
    this.arm()
    return this
  }

  private arm(): void {
    clearTimeout(this.timer)
    if (this.timeoutMs > 0 && !this.destroyed)
      this.timer = setTimeout(() => this.emit('timeout'), this.timeoutMs).unref()
  }

  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
  address(): { address?: string; port?: number } {
    return { address: this.localAddress, port: this.localPort }
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening'
    if (this.destroyed) return 'closed'
    if (this.readable && this.writable) return 'open'
    return this.readable ? 'readOnly' : this.writable ? 'writeOnly' : 'closed'
  }
}

/** A socket for a driver that calls `connect()` itself (pg's `stream` option). */
export function createNetSocket(options: NetSocketOptions): TunnelNetSocket {
  return new TunnelNetSocket(options)
}

/** Like `net.connect`: a socket that is already connecting. */
export function connectNet(options: NetSocketOptions, onConnect?: () => void): TunnelNetSocket {
  return new TunnelNetSocket(options).connect(onConnect)
}
