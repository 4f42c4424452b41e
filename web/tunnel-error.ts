/**
 * @module gangway/tunnel-error
 * How the browser core reports a failed tunnel: `TunnelError`, its codes, and the daemon close codes
 * they come from (docs/protocol.md §6). Imports nothing.
 */

export type TunnelErrorCode =
  | 'GOING_AWAY'
  | 'PROTOCOL_ERROR'
  | 'UNSUPPORTED_DATA'
  | 'NETWORK'
  | 'INVALID_PAYLOAD'
  | 'POLICY'
  | 'MESSAGE_TOO_BIG'
  | 'TARGET_RESET'
  | 'BAD_MESSAGE'
  | 'AUTH_FAILED'
  | 'FORBIDDEN'
  | 'IDLE_TIMEOUT'
  | 'CLOSED_BY_OPERATOR'
  | 'BYTE_LIMIT'
  | 'THROTTLED'
  | 'TARGET_REFUSED'
  | 'TARGET_UNREACHABLE'
  | 'TARGET_TIMEOUT'
  | 'ABORTED'
  | 'BAD_OPTION'
  | 'TOKEN_ERROR'
  | 'CLOSED'
  | 'TIMEOUT'
  | 'OVERFLOW'
  | 'UNKNOWN'

/** Daemon close code → `TunnelError.code` (docs/protocol.md §6). */
export const CLOSE_CODES: Readonly<Record<number, TunnelErrorCode>> = {
  1001: 'GOING_AWAY',
  1002: 'PROTOCOL_ERROR',
  1003: 'UNSUPPORTED_DATA',
  1006: 'NETWORK',
  1007: 'INVALID_PAYLOAD',
  1008: 'POLICY',
  1009: 'MESSAGE_TOO_BIG',
  1011: 'TARGET_RESET',
  4400: 'BAD_MESSAGE',
  4401: 'AUTH_FAILED',
  4403: 'FORBIDDEN',
  4408: 'IDLE_TIMEOUT',
  4410: 'CLOSED_BY_OPERATOR',
  4413: 'BYTE_LIMIT',
  4429: 'THROTTLED',
  4502: 'TARGET_REFUSED',
  4503: 'TARGET_UNREACHABLE',
  4504: 'TARGET_TIMEOUT',
}

/** Every way a tunnel fails: a daemon close code (`closeCode`), or a client-side cause (`closeCode` 0). */
export class TunnelError extends Error {
  declare readonly code: TunnelErrorCode
  declare readonly closeCode: number
  declare readonly reason: string
  constructor(code: TunnelErrorCode, closeCode = 0, reason = '') {
    super(reason ? `${code}: ${reason}` : code)
    Object.assign(this, { name: 'TunnelError', code, closeCode, reason })
  }
}
