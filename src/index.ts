/**
 * @module gangway
 * Public API: the tunnel server, its configuration types and defaults, the error hierarchy, and the wire
 * constants. Nothing else is exported.
 * The top of the house: it may import any layer; nothing in src/ imports it.
 */
export { createTunnelServer } from './gateway/server.js'
export type { TunnelServer, TunnelServerOptions, TunnelStats } from './gateway/server.js'
export { DEFAULTS, OPTIONS } from './config/options.js'
export type { Config, ListenAddress, Target, TextPolicy, RefuseWith } from './config/options.js'
export { GangwayError, ConfigError, TunnelError } from './errors.js'
export type { GangwayErrorCode, TunnelErrorCode } from './errors.js'
export { CloseCode, SUBPROTOCOL_BINARY } from './protocol.js'
export type { TunnelResult } from './relay/bridge.js'
export { createLogger, fingerprint, silentLogger } from './log.js'
export type { Logger } from './log.js'
