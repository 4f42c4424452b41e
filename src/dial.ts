/**
 * @module dial
 * Connects a tunnel's target: TCP (every resolved address, IPv6 and IPv4 interleaved: Node's happy eyeballs)
 * or a unix socket, within a connect timeout, abortable when the client goes away. Failures become
 * `TunnelError`s whose close code says what happened (refused, unreachable, timeout). Knows nothing of
 * WebSockets.
 */
import type { LookupAddress } from 'node:dns'
import net, { type LookupFunction, type Socket } from 'node:net'
import type { Target } from './config.js'
import { tunnelError, type TunnelError, type TunnelErrorCode } from './errors.js'
import { createTargetReads, registerTargetReads } from './target-reads.js'

/** Delay before the next address is tried while one is still connecting (RFC 8305 suggests 250 ms). */
const HAPPY_EYEBALLS_ATTEMPT_MS = 250
/** TCP keepalive probes start after this much silence; the WebSocket heartbeat covers the client side. */
const KEEPALIVE_INITIAL_DELAY_MS = 30_000

export interface DialOptions {
  timeoutMs: number
  signal: AbortSignal
  /**
   * Addresses already resolved (and checked by the target policy): the dial uses exactly these instead of
   * a second DNS lookup, so a name cannot resolve differently between the check and the connect.
   */
  addresses?: readonly LookupAddress[] | undefined
}

/** Connects `target`; resolves with a connected socket (no-delay and keepalive on). */
export function dial(target: Target, options: DialOptions): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    // Reads go into one reused buffer (src/target-reads.ts) instead of a fresh one per read.
    const reads = createTargetReads()
    const socket =
      target.kind === 'unix'
        ? net.connect({ path: target.path, onread: reads.onread })
        : net.connect({
            onread: reads.onread,
            host: target.host,
            port: target.port,
            noDelay: true,
            keepAlive: true,
            keepAliveInitialDelay: KEEPALIVE_INITIAL_DELAY_MS,
            autoSelectFamily: true,
            autoSelectFamilyAttemptTimeout: HAPPY_EYEBALLS_ATTEMPT_MS,
            ...(options.addresses === undefined ? {} : { lookup: fixedLookup(options.addresses) }),
          })
    registerTargetReads(socket, reads)
    const timer = setTimeout(dialOnTimeout, options.timeoutMs)
    socket.once('connect', dialOnConnect)
    socket.once('error', dialOnError)
    options.signal.addEventListener('abort', dialOnAbort)

    function settle(): void {
      clearTimeout(timer)
      socket.off('connect', dialOnConnect)
      socket.off('error', dialOnError)
      options.signal.removeEventListener('abort', dialOnAbort)
    }
    function dialOnConnect(): void {
      settle()
      resolve(socket)
    }
    function dialOnError(err: NodeJS.ErrnoException): void {
      settle()
      socket.destroy()
      reject(dialError(err, target))
    }
    function dialOnTimeout(): void {
      settle()
      socket.destroy()
      reject(
        tunnelError(
          'ERR_TARGET_TIMEOUT',
          `connect to ${describeTarget(target)} timed out after ${options.timeoutMs} ms`,
        ),
      )
    }
    function dialOnAbort(): void {
      settle()
      socket.destroy()
      const reason: unknown = options.signal.reason
      reject(reason instanceof Error ? reason : new Error('dial aborted'))
    }
  })
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

const UNREACHABLE = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EAI_NODATA',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'ENOENT',
  'ENOTDIR',
  'EACCES',
  'EPERM',
  'ENOTSOCK',
])

/** Maps a connect error to the tunnel error a client can act on. */
export function dialError(err: NodeJS.ErrnoException, target: Target): TunnelError {
  const errno = err.code ?? 'EUNKNOWN'
  let code: TunnelErrorCode = 'ERR_TARGET_UNREACHABLE'
  if (errno === 'ECONNREFUSED' || errno === 'ECONNRESET') code = 'ERR_TARGET_REFUSED'
  else if (errno === 'ETIMEDOUT') code = 'ERR_TARGET_TIMEOUT'
  else if (!UNREACHABLE.has(errno)) code = 'ERR_TARGET_UNREACHABLE'
  return tunnelError(code, `connect to ${describeTarget(target)} failed: ${errno}`, err)
}

export function describeTarget(target: Target): string {
  if (target.kind === 'unix') return `unix:${target.path}`
  return target.host.includes(':')
    ? `[${target.host}]:${target.port}`
    : `${target.host}:${target.port}`
}
