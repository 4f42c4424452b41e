/**
 * @module gateway/session-end
 * A session ends when its token does (docs/auth.md, "Sessions end when their token does"): a tunnel
 * opened with a token that expires (JWT `exp`, the token API's `expiresAt`, a Redis key's TTL) is closed
 * with 4401 `token expired` at that time plus `--session-expiry-grace`, unless `--session-expiry ignore`; a
 * route's `maxDuration` closes every tunnel with 4408 `session time limit reached`. `gangway.v1` clients get
 * an `expiring` control message `--session-expiry-warning` before, so a page can fetch a new token and
 * reconnect. One timer per tunnel, cleared when it ends. Knows nothing of bytes.
 */
import type { RelaySocket } from '../relay/handover.js'
import type { Config } from '../config/options.js'
import { CloseCode, SUBPROTOCOL_V1 } from '../protocol.js'
import type { Tunnel } from '../relay/bridge.js'

/** Close reason of a tunnel whose token expired (code 4401). */
export const TOKEN_EXPIRED = 'token expired'
/** Close reason of a tunnel that reached its route's `maxDuration` (code 4408). */
export const TIME_LIMIT = 'session time limit reached'

/** setTimeout's longest delay; a later end is reached in several steps. */
const MAX_DELAY_MS = 2 ** 31 - 1

export interface SessionEndOptions {
  readonly ws: RelaySocket
  readonly tunnel: Tunnel
  /** When the admitting token expires (ms since the epoch), if known. */
  readonly expiresAt: number | undefined
  /** The route's `maxDuration`, if any. */
  readonly maxDurationMs: number | undefined
  readonly config: Pick<Config, 'sessionExpiry' | 'sessionExpiryGraceMs' | 'sessionExpiryWarningMs'>
  readonly now?: () => number
}

/** The `expiring` control message (docs/protocol.md): `in` seconds left, and why. */
export function encodeExpiring(inSeconds: number, reason: string): string {
  return JSON.stringify({ type: 'expiring', in: inSeconds, reason })
}

/** Arms the end of one tunnel's session, if it has one. */
export function watchSessionEnd(options: SessionEndOptions): void {
  const now = options.now ?? Date.now
  const { config, tunnel, ws } = options
  const openedAt = now()
  let end: { at: number; code: number; reason: string } | undefined
  if (config.sessionExpiry === 'enforce' && options.expiresAt !== undefined) {
    end = {
      at: options.expiresAt + config.sessionExpiryGraceMs,
      code: CloseCode.UNAUTHORIZED,
      reason: TOKEN_EXPIRED,
    }
  }
  if (options.maxDurationMs !== undefined && options.maxDurationMs > 0) {
    const at = openedAt + options.maxDurationMs
    if (end === undefined || at < end.at)
      end = { at, code: CloseCode.IDLE_TIMEOUT, reason: TIME_LIMIT }
  }
  if (end === undefined) return
  const the = end
  const warns = ws.protocol === SUBPROTOCOL_V1 && config.sessionExpiryWarningMs > 0
  let warned = false
  let handle: NodeJS.Timeout | undefined
  // `closed` never rejects (the bridge only resolves it); the catch keeps the chain complete.
  tunnel.closed.then(sessionOnTunnelClosed).catch(sessionOnTunnelClosed)
  step()

  function sessionOnTunnelClosed(): void {
    clearTimeout(handle)
    handle = undefined
  }

  function step(): void {
    const left = the.at - now()
    if (left <= 0) {
      tunnel.close(the.code, the.reason)
      return
    }
    if (warns && !warned && left <= config.sessionExpiryWarningMs) {
      warned = true
      if (ws.readyState === ws.OPEN) ws.send(encodeExpiring(Math.ceil(left / 1000), the.reason))
    }
    const next = warns && !warned ? left - config.sessionExpiryWarningMs : left
    handle = setTimeout(step, Math.min(Math.max(next, 1), MAX_DELAY_MS))
  }
}
