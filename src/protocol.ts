/**
 * @module protocol
 * Wire-level constants shared by the daemon and the browser shim: subprotocol names and the close codes
 * the daemon documents. Imports nothing, so `web/` may import it.
 */

/** Subprotocol echoed back when a client offers it (noVNC and websockify clients rely on it). */
export const SUBPROTOCOL_BINARY = 'binary'

/** The enhanced subprotocol: JSON control messages in text frames (open, eof, credit); docs/protocol.md. */
export const SUBPROTOCOL_V1 = 'gangway.v1'

/** Receive window (bytes) a `gangway.v1` client holds before its first `credit` message. */
export const INITIAL_CREDIT = 262_144

/** Largest control message (UTF-8 bytes) a `gangway.v1` peer accepts. */
export const MAX_CONTROL_MESSAGE_BYTES = 1024

/**
 * A `Sec-WebSocket-Protocol` entry `gangway.bearer.<base64url of the token, no padding>` carries a token
 * from a browser (the one header `new WebSocket()` can set). The daemon never selects or echoes it.
 */
export const SUBPROTOCOL_BEARER_PREFIX = 'gangway.bearer.'

/**
 * Close codes the daemon sends. RFC 6455 codes (1000-1011) keep their standard meaning; 4xxx codes are
 * Gangway's own and mirror the HTTP status they replace when `--refuse-with http` is used (4502 ~ 502).
 */
export const CloseCode = {
  /** The target closed its side (EOF) and every pending byte was delivered. */
  NORMAL: 1000,
  /** The daemon is shutting down (drain timeout reached). */
  GOING_AWAY: 1001,
  /** The peer broke the WebSocket protocol. */
  PROTOCOL_ERROR: 1002,
  /** A text message arrived while `--text reject` is set. */
  UNSUPPORTED_DATA: 1003,
  /** No close frame was received (the peer vanished or the heartbeat timed out). Never sent on the wire. */
  ABNORMAL: 1006,
  /** A text message was not valid UTF-8. */
  INVALID_PAYLOAD: 1007,
  /** A message exceeded `--max-message-size` (after inflation with `--compress`). */
  MESSAGE_TOO_BIG: 1009,
  /** The target reset the connection or failed mid-stream. */
  INTERNAL_ERROR: 1011,
  /** A `gangway.v1` control message was malformed, unknown or out of order (or data followed `eof`). */
  BAD_MESSAGE: 4400,
  /** Missing, invalid, expired or unknown token (one answer for all). */
  UNAUTHORIZED: 4401,
  /** The Origin or the target is forbidden by policy. */
  FORBIDDEN: 4403,
  /** No payload moved in either direction for `--idle-timeout` seconds. */
  IDLE_TIMEOUT: 4408,
  /** An operator closed the tunnel (admin API or status page), or revoked its token ("token revoked"). */
  CLOSED_BY_OPERATOR: 4410,
  /** The tunnel carried the most payload its token or route allows (`maxBytes`). */
  BYTE_LIMIT: 4413,
  /** `--max-connections` tunnels are already open. */
  TOO_MANY_CONNECTIONS: 4429,
  /** Too many tunnels for this token, or too many failed attempts from this client address. */
  RATE_LIMITED: 4429,
  /** The target refused the TCP connection (nothing listens there), or its TLS handshake failed. */
  TARGET_REFUSED: 4502,
  /** The target is unreachable: DNS failure, no route, missing unix socket. */
  TARGET_UNREACHABLE: 4503,
  /** The token store (Redis, the token API, a JWKS URL) did not answer. */
  SERVICE_UNAVAILABLE: 4503,
  /** The TCP connect did not complete within `--connect-timeout`. */
  TARGET_TIMEOUT: 4504,
} as const

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode]
