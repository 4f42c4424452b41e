/**
 * @module targets/dial
 * Connects a tunnel's target: TCP (every resolved address, IPv6 and IPv4 interleaved: Node's happy eyeballs),
 * TLS over that TCP connection for `tls://` targets (target-tls.ts), or a unix socket, within one connect
 * timeout, abortable when the client goes away. Failures become
 * `TunnelError`s whose close code says what happened (refused, unreachable, timeout). Knows nothing of
 * WebSockets.
 */
import type { LookupAddress } from 'node:dns'
import net, { type LookupFunction, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createSecureContext, type TLSSocket } from 'node:tls'
import type { CancelSignal } from '../cancel.js'
import type { Target } from '../config/options.js'
import { tunnelError, type TunnelError, type TunnelErrorCode } from '../errors.js'
import { createTargetReads, registerTargetReads } from '../relay/target-reads.js'
import { secureTarget, tlsFailure, type TargetTlsSettings, type TcpTarget } from './target-tls.js'

/** Delay before the next address is tried while one is still connecting (RFC 8305 suggests 250 ms). */
const HAPPY_EYEBALLS_ATTEMPT_MS = 250
/** Shortest wait for a TLS 1.3 target's session ticket (its "client certificate accepted"). */
const TLS13_CONFIRM_MIN_MS = 50
/** TCP keepalive probes start after this much silence; the WebSocket heartbeat covers the client side. */
const KEEPALIVE_INITIAL_DELAY_MS = 30_000

export interface DialOptions {
  timeoutMs: number
  signal: CancelSignal
  /**
   * Addresses already resolved (and checked by the target policy): the dial uses exactly these instead of
   * a second DNS lookup, so a name cannot resolve differently between the check and the connect.
   */
  addresses?: readonly LookupAddress[] | undefined
  /** Bytes written first, on the raw connection (a PROXY protocol header): before any TLS handshake. */
  preamble?: Buffer | undefined
  /** TLS settings for a `tls://` target (default: Node's roots, verification on). */
  tls?: TargetTlsSettings | undefined
  /**
   * Read the target as an ordinary stream instead of into a reused buffer: a login (targets/login/) reads
   * the target's answers before the bridge takes the socket over.
   */
  plainReads?: boolean | undefined
}

/**
 * Connects `target`; resolves with a connected socket (no-delay and keepalive on). For a `tls://` target
 * the TLS handshake runs over that same socket, within the same timeout, and the socket resolved is the
 * `TLSSocket` once the target's certificate is verified.
 */
export function dial(target: Target, options: DialOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    // Plain targets' reads go into a reused buffer (src/target-reads.ts) instead of a fresh one per read;
    // a TLS target's bytes are read by the TLS layer.
    const reads =
      options.plainReads !== true && (target.kind === 'unix' || target.tls !== true)
        ? createTargetReads()
        : undefined
    // One literal of one shape per kind (no spreads): this runs for every tunnel.
    const onread = reads?.onread
    const socket =
      target.kind === 'unix'
        ? net.connect({ path: target.path, onread })
        : net.connect({
            host: target.host,
            port: target.port,
            onread,
            noDelay: true,
            keepAlive: true,
            keepAliveInitialDelay: KEEPALIVE_INITIAL_DELAY_MS,
            autoSelectFamily: true,
            autoSelectFamilyAttemptTimeout: HAPPY_EYEBALLS_ATTEMPT_MS,
            lookup: options.addresses === undefined ? undefined : fixedLookup(options.addresses),
          })
    if (reads !== undefined) registerTargetReads(socket, reads)
    let secure: TLSSocket | undefined
    let tlsStartedAt = 0
    let secured = false
    let settled = false
    let ticketSeen = false
    const startedAt = performance.now()
    const remainingMs = (): number =>
      Math.max(0, options.timeoutMs - (performance.now() - startedAt))
    let timer = setTimeout(dialOnTimeout, options.timeoutMs)
    // settle() removes both, whichever comes first ('on' spares a once-wrapper per dial).
    socket.on('connect', dialOnConnect)
    socket.on('error', dialOnError)
    options.signal.addEventListener('abort', dialOnAbort)

    function settle(): void {
      settled = true
      clearTimeout(timer)
      socket.off('connect', dialOnConnect)
      socket.off('error', dialOnError)
      secure?.off('secureConnect', dialOnSecureConnect)
      secure?.off('session', tlsOnSession)
      secure?.off('error', dialOnTlsError)
      options.signal.removeEventListener('abort', dialOnAbort)
    }
    function destroy(): void {
      secure?.on('error', socketOnSettledError) // a failed dial reports once; later errors are moot
      secure?.destroy()
      socket.destroy()
    }
    function dialOnConnect(): void {
      if (target.kind === 'unix' || target.tls !== true) {
        if (options.preamble !== undefined) socket.write(options.preamble)
        settle()
        resolve(socket)
        return
      }
      // The PROXY header goes out in clear before the ClientHello: that is where backends expect it.
      if (options.preamble === undefined) startTls(target)
      else socket.write(options.preamble, () => startTls(target))
    }
    function startTls(tcpTarget: TcpTarget): void {
      if (socket.destroyed) return // timed out or aborted meanwhile: already rejected
      socket.off('error', dialOnError)
      // The TLSSocket owns the connection now and reports its errors; the raw socket must not throw.
      socket.on('error', socketOnSettledError)
      tlsStartedAt = performance.now()
      secure = secureTarget(socket, tcpTarget, options.tls ?? defaultTlsSettings())
      secure.once('secureConnect', dialOnSecureConnect)
      secure.once('error', dialOnTlsError)
      secure.on('session', tlsOnSession) // from the start: Node enables session callbacks on demand
    }
    function tlsOnSession(): void {
      ticketSeen = true
      if (secured) dialOnConfirmed()
    }
    function dialOnSecureConnect(): void {
      const tlsSocket = secure as TLSSocket
      secured = true
      if (tlsSocket.getProtocol() !== 'TLSv1.3' || ticketSeen) {
        settle()
        resolve(tlsSocket)
        return
      }
      // TLS 1.3: our handshake is complete before the target has checked our client certificate (or its
      // absence); a refusal arrives as an alert a moment later. Its session ticket says it accepted us, so
      // wait for that (bounded: a target may send none) and a refused certificate is still a refusal.
      clearTimeout(timer)
      const handshakeMs = performance.now() - tlsStartedAt
      const windowMs = Math.max(TLS13_CONFIRM_MIN_MS, 2 * handshakeMs)
      timer = setTimeout(dialOnWindowEnd, Math.min(windowMs, remainingMs()))
    }
    function dialOnWindowEnd(): void {
      // Timers run before I/O in an event-loop turn: after a stall, an alert may already wait in the
      // socket. Two turns of I/O first (one for a target in this process to answer), then accept.
      setImmediate(() => setImmediate(dialOnConfirmed))
    }
    function dialOnConfirmed(): void {
      if (settled) return
      settle()
      resolve(secure as TLSSocket)
    }
    function dialOnTlsError(err: NodeJS.ErrnoException): void {
      settle()
      destroy()
      reject(tlsFailure(err, describeTarget(target)))
    }
    function dialOnError(err: NodeJS.ErrnoException): void {
      settle()
      destroy()
      reject(dialError(err, target))
    }
    function dialOnTimeout(): void {
      settle()
      destroy()
      const step = secure === undefined ? 'connect to' : 'TLS handshake with'
      reject(
        tunnelError(
          'ERR_TARGET_TIMEOUT',
          `${step} ${describeTarget(target)} timed out after ${options.timeoutMs} ms`,
        ),
      )
    }
    function dialOnAbort(): void {
      settle()
      destroy()
      const reason: unknown = options.signal.reason
      reject(reason instanceof Error ? reason : new Error('dial aborted'))
    }
  })
}

/** Swallows errors of a socket whose outcome was already reported (or is reported by its TLSSocket). */
function socketOnSettledError(): void {}

let defaultSettings: TargetTlsSettings | undefined

/** Node's public roots, verification on: for `tls://` targets dialled without loaded settings. */
function defaultTlsSettings(): TargetTlsSettings {
  defaultSettings ??= { context: createSecureContext({}), servername: undefined, insecure: false }
  return defaultSettings
}

/** A `lookup` for net.connect that answers with a fixed address list (IPv6 and IPv4 interleaved by Node). */
function fixedLookup(addresses: readonly LookupAddress[]): LookupFunction {
  return function lookupFixed(_hostname, options, callback) {
    const first = addresses[0]
    if (first === undefined) {
      const err: NodeJS.ErrnoException = new Error('no address to dial')
      err.code = 'ENOTFOUND'
      callback(err, '', 4)
      return
    }
    if (options.all === true) {
      ;(callback as unknown as (e: null, list: LookupAddress[]) => void)(null, [...addresses])
    } else {
      callback(null, first.address, first.family)
    }
  }
}

/**
 * Maps a connect error to the tunnel error a client can act on: refused or reset, timed out, and
 * everything else (DNS failure, no route, a missing unix socket, …) unreachable.
 */
export function dialError(err: NodeJS.ErrnoException, target: Target): TunnelError {
  const errno = err.code ?? 'EUNKNOWN'
  let code: TunnelErrorCode = 'ERR_TARGET_UNREACHABLE'
  if (errno === 'ECONNREFUSED' || errno === 'ECONNRESET') code = 'ERR_TARGET_REFUSED'
  else if (errno === 'ETIMEDOUT') code = 'ERR_TARGET_TIMEOUT'
  return tunnelError(code, `connect to ${describeTarget(target)} failed: ${errno}`, err)
}

export function describeTarget(target: Target): string {
  if (target.kind === 'unix') return `unix:${target.path}`
  const scheme = target.tls === true ? 'tls://' : ''
  return target.host.includes(':')
    ? `${scheme}[${target.host}]:${target.port}`
    : `${scheme}${target.host}:${target.port}`
}
