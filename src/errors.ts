/**
 * @module errors
 * The one error hierarchy: every error Gangway raises on purpose is a `GangwayError` with a stable `code`.
 * `TunnelError` carries both the HTTP status (refusal before the upgrade) and the WebSocket close code
 * (failure after it); `ConfigError` is a bad flag, address or config value (the CLI exits 2 on it).
 * Imports only protocol.ts: every layer may use it.
 */
import { CloseCode } from './protocol.js'

export type TunnelErrorCode =
  | 'ERR_TARGET_REFUSED'
  | 'ERR_TARGET_UNREACHABLE'
  | 'ERR_TARGET_TIMEOUT'
  | 'ERR_TARGET_TLS'
  | 'ERR_TARGET_LOGIN'
  | 'ERR_LOGIN_TIMEOUT'
  | 'ERR_TARGET_RESET'
  | 'ERR_TOO_MANY_CONNECTIONS'
  | 'ERR_SHUTTING_DOWN'
  | 'ERR_BAD_HANDSHAKE'
  | 'ERR_TOKEN_INVALID'
  | 'ERR_ORIGIN_DENIED'
  | 'ERR_TARGET_DENIED'
  | 'ERR_NO_TARGET'
  | 'ERR_RATE_LIMITED'
  | 'ERR_TOKEN_LIMIT'
  | 'ERR_RESOLVER_UNAVAILABLE'

export type GangwayErrorCode = TunnelErrorCode | 'ERR_CONFIG' | 'ERR_LISTEN'

export class GangwayError extends Error {
  override name = 'GangwayError'
  readonly code: GangwayErrorCode
  constructor(code: GangwayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** A bad flag, address, config key or value. `message` is one line that names the problem. */
export class ConfigError extends GangwayError {
  override name = 'ConfigError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options)
  }
}

export interface TunnelErrorOptions {
  /** HTTP status when refused before the upgrade (`--refuse-with http`). */
  status: number
  /** WebSocket close code when reported after the upgrade. */
  closeCode: number
  cause?: unknown
}

export class TunnelError extends GangwayError {
  override name = 'TunnelError'
  declare readonly code: TunnelErrorCode
  readonly status: number
  readonly closeCode: number
  constructor(code: TunnelErrorCode, message: string, options: TunnelErrorOptions) {
    super(code, message, { cause: options.cause })
    this.status = options.status
    this.closeCode = options.closeCode
  }
}

/** The refusal table: what each tunnel error becomes on either side of the upgrade. */
export const REFUSALS: Record<TunnelErrorCode, { status: number; closeCode: number }> = {
  ERR_TARGET_REFUSED: { status: 502, closeCode: CloseCode.TARGET_REFUSED },
  ERR_TARGET_UNREACHABLE: { status: 503, closeCode: CloseCode.TARGET_UNREACHABLE },
  ERR_TARGET_TIMEOUT: { status: 504, closeCode: CloseCode.TARGET_TIMEOUT },
  ERR_TARGET_TLS: { status: 502, closeCode: CloseCode.TARGET_REFUSED },
  ERR_TARGET_LOGIN: { status: 502, closeCode: CloseCode.TARGET_REFUSED },
  ERR_LOGIN_TIMEOUT: { status: 504, closeCode: CloseCode.TARGET_TIMEOUT },
  ERR_TARGET_RESET: { status: 502, closeCode: CloseCode.INTERNAL_ERROR },
  ERR_TOO_MANY_CONNECTIONS: { status: 503, closeCode: CloseCode.TOO_MANY_CONNECTIONS },
  ERR_SHUTTING_DOWN: { status: 503, closeCode: CloseCode.GOING_AWAY },
  ERR_BAD_HANDSHAKE: { status: 400, closeCode: CloseCode.PROTOCOL_ERROR },
  ERR_TOKEN_INVALID: { status: 401, closeCode: CloseCode.UNAUTHORIZED },
  ERR_ORIGIN_DENIED: { status: 403, closeCode: CloseCode.FORBIDDEN },
  ERR_TARGET_DENIED: { status: 403, closeCode: CloseCode.FORBIDDEN },
  ERR_NO_TARGET: { status: 400, closeCode: CloseCode.FORBIDDEN },
  ERR_RATE_LIMITED: { status: 429, closeCode: CloseCode.RATE_LIMITED },
  ERR_TOKEN_LIMIT: { status: 429, closeCode: CloseCode.RATE_LIMITED },
  ERR_RESOLVER_UNAVAILABLE: { status: 503, closeCode: CloseCode.SERVICE_UNAVAILABLE },
}

export function tunnelError(code: TunnelErrorCode, message: string, cause?: unknown): TunnelError {
  return new TunnelError(code, message, { ...REFUSALS[code], cause })
}
