/**
 * @module gangway/node
 * A `net.Socket`-like Duplex over the tunnel, for Node drivers that accept a socket (pg's `stream`, an
 * ioredis `Connector`, `@xmpp/client`, `tls.connect({ socket })`). Tunnel errors become the errno codes
 * drivers already handle: ECONNREFUSED, ETIMEDOUT, ECONNRESET, EACCES.
 *
 * `TunnelNetSocket` has every member `net.Socket` declares, so TypeScript takes it where a driver's types
 * demand a `net.Socket` (ioredis's `Connector`) with no cast. Structural, not `implements net.Socket`: the
 * emitted .d.ts then names no `node:net` type, so a user's newer or older @types/node cannot break it.
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
  /** The daemon's TCP leg (its `open` message), once connected; the families derive from the addresses. */
  remoteAddress: string | undefined
  remotePort: number | undefined
  remoteFamily: string | undefined
  localAddress?: string
  localPort?: number
  localFamily?: string
  /** Always empty: the daemon resolves the target and connects, this socket never tries an address. */
  readonly autoSelectFamilyAttemptedAddresses: string[] = []
  /** The idle timeout last given to `setTimeout()`, as net.Socket's. */
  timeout?: number
  bytesRead = 0
  bytesWritten = 0
  private typeOfService = 0
  private tunnel?: TunnelSocket
  private writer?: WritableStreamDefaultWriter<BinaryChunk>
  private reader?: ReadableStreamDefaultReader<Uint8Array>
  private reading = false
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
      this.remoteFamily = family(remoteAddress)
      this.localFamily = family(localAddress)
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

  /** As net.Socket's: `end()`, then destroy once everything written was sent (at once if it already was). */
  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  /**
   * Drops what waits to be sent and destroys the socket without an error, as net.Socket's. The daemon has
   * no RST to send on our behalf: it closes its TCP leg to the target with a FIN.
   */
  resetAndDestroy(): this {
    this.writer?.abort(new Error('resetAndDestroy')).catch(() => {})
    return this.destroy()
  }

  /** Deprecated in net.Socket too: `writableLength`. */
  get bufferSize(): number {
    return this.writableLength
  }

  /** An idle timer, as `net.Socket`'s: emits `timeout` after `ms` without reads or writes (0 = off). */
  setTimeout(ms: number, cb?: () => void): this {
    this.timeout = ms
    if (cb) this[ms ? 'once' : 'off']('timeout', cb)
    this.arm()
    return this
  }

  private arm(): void {
    clearTimeout(this.timer)
    if (this.timeout && !this.destroyed)
      this.timer = setTimeout(() => this.emit('timeout'), this.timeout).unref()
  }

  // No effect: the daemon's TCP leg to the target carries the packets, with the daemon's socket options.
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  /** Node 24's: the value is kept and read back by `getTypeOfService()`, but not applied (see above). */
  setTypeOfService(tos: number): this {
    this.typeOfService = tos
    return this
  }
  getTypeOfService(): number {
    return this.typeOfService
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

/** 'IPv6' or 'IPv4', as net.Socket's `remoteFamily`, for an IP address the daemon reported. */
function family(address: string | undefined): string | undefined {
  return address === undefined ? undefined : address.includes(':') ? 'IPv6' : 'IPv4'
}

/** A socket for a driver that calls `connect()` itself (pg's `stream` option). */
export function createNetSocket(options: NetSocketOptions): TunnelNetSocket {
  return new TunnelNetSocket(options)
}

/** Like `net.connect`: a socket that is already connecting. */
export function connectNet(options: NetSocketOptions, onConnect?: () => void): TunnelNetSocket {
  return new TunnelNetSocket(options).connect(onConnect)
}
