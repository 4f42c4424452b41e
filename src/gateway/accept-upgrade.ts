/**
 * @module gateway/accept-upgrade
 * Completes a WebSocket upgrade that negotiates no extension, without `ws`: writes the 101 (RFC 6455
 * 4.2.2: the accept key, the chosen subprotocol) and puts the streaming codec (relay/stream-socket) on the
 * socket. `ws` did the same work for each connection and also built a WebSocket object that the codec then
 * replaced (relay/handover); doing it here saved 20-30 µs of relay CPU per connection, 6-9 % of it
 * (docs/benchmark.md). An upgrade that may negotiate permessage-deflate (`--compress` and an extension offer)
 * still goes through `ws`. Expects a request that `handshakeProblem` (upgrade.ts) has accepted: GET,
 * `Upgrade: websocket`, a well-formed key, version 13, a well-formed subprotocol list.
 */
import { hash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { SUBPROTOCOL_BINARY, SUBPROTOCOL_V1 } from '../protocol.js'
import { asRelaySocket, type RelaySocket } from '../relay/handover.js'
import { StreamWebSocket, type StreamSocketOptions } from '../relay/stream-socket.js'

/** RFC 6455 1.3: appended to the client's key before hashing. */
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/**
 * Select `gangway.v1` when offered, else echo `binary` (noVNC, websockify clients), else nothing; never
 * refuse, and never select a `gangway.bearer.` entry (it carries a secret).
 */
export function chooseSubprotocol(offered: Set<string>): string | false {
  if (offered.has(SUBPROTOCOL_V1)) return SUBPROTOCOL_V1
  return offered.has(SUBPROTOCOL_BINARY) ? SUBPROTOCOL_BINARY : false
}

/** The subprotocol the 101 names for a `Sec-WebSocket-Protocol` header ('' for none). */
export function subprotocolFor(header: string | undefined): string {
  if (header === undefined) return ''
  const chosen = chooseSubprotocol(new Set(header.split(',').map((name) => name.trim())))
  return chosen === false ? '' : chosen
}

/** The whole 101 response for a client's `Sec-WebSocket-Key` and the chosen subprotocol. */
export function switchingProtocols(key: string, protocol: string): string {
  const accept = hash('sha1', key + WS_GUID, 'base64')
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n` +
    (protocol === '' ? '' : `Sec-WebSocket-Protocol: ${protocol}\r\n`) +
    '\r\n'
  )
}

/** True when `ws` must complete this upgrade: permessage-deflate is on and the client offers extensions. */
export function needsWs(req: IncomingMessage, compress: boolean): boolean {
  return compress && req.headers['sec-websocket-extensions'] !== undefined
}

/**
 * Writes the 101 and returns the streaming socket over `socket` (`head`: bytes the client sent early, parsed
 * first). Undefined, with the socket destroyed, when the client has half-closed meanwhile (as `ws` does).
 */
export function acceptUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: StreamSocketOptions,
): RelaySocket | undefined {
  if (!socket.readable || !socket.writable) {
    socket.destroy()
    return undefined
  }
  const protocol = subprotocolFor(req.headers['sec-websocket-protocol'])
  socket.write(switchingProtocols(req.headers['sec-websocket-key'] ?? '', protocol))
  return asRelaySocket(new StreamWebSocket(socket, head, protocol, options))
}
