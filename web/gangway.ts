/**
 * @module gangway
 * The browser core: a TCP socket over a Gangway WebSocket, shaped like Cloudflare's / WinterCG's
 * `connect()` (`readable`, `writable`, `opened`, `closed`, `close()`), and `TunnelWebSocket`, a
 * WebSocket-shaped facade for code that takes a WebSocket (noVNC, xterm). Speaks `gangway.v1`
 * (docs/protocol.md): open info, half-close, receive credit; falls back to raw mode against an old daemon.
 * Zero dependencies, no Node APIs; imports only the shared wire constants. This entry gathers the public
 * API of connect.ts, tunnel-websocket.ts and tunnel-error.ts; esbuild bundles them into one file.
 */
export { CLOSE_CODES, TunnelError, type TunnelErrorCode } from './tunnel-error.js'
export {
  connect,
  type Address,
  type BinaryChunk,
  type CloseInfo,
  type ConnectOptions,
  type SocketInfo,
  type TunnelSocket,
  type WebSocketConstructor,
  type WebSocketLike,
} from './connect.js'
export {
  TunnelWebSocket,
  type TunnelCloseEvent,
  type TunnelWebSocketEventMap,
} from './tunnel-websocket.js'
