/**
 * @module relay/handover
 * Where ws hands an upgraded socket to the streaming codec, for the upgrades ws completes: those that may
 * negotiate permessage-deflate (`--compress` and an extension offer; the others are completed by
 * gateway/accept-upgrade). ws does that handshake (its key check, subprotocol selection, the 101 and
 * permessage-deflate negotiation); the WebSocketServer is given
 * `streamingWebSocketClass(...)` as its `WebSocket` option (documented: "must be extended from the
 * original WebSocket"), whose `setSocket` — the method ws calls with the socket right after writing the
 * 101, private in ws's source — builds a `StreamWebSocket` on the socket instead of ws's receiver and
 * sender. A connection that negotiated an extension stays entirely on ws's path. This is the one ws
 * internal the daemon relies on; test/unit/handover.test.ts fails if a ws release changes it.
 */
import type { Duplex } from 'node:stream'
import { WebSocket } from 'ws'
import { StreamWebSocket, type ReadBatch, type StreamSocketOptions } from './stream-socket.js'

/** The parts of a server-side WebSocket the bridge uses: ws's own class, or the streaming one. */
export type RelaySocket = Pick<
  WebSocket,
  | 'protocol'
  | 'extensions'
  | 'bufferedAmount'
  | 'readyState'
  | 'OPEN'
  | 'send'
  | 'ping'
  | 'close'
  | 'terminate'
  | 'pause'
  | 'resume'
  | 'on'
  | 'once'
> & {
  /** The streaming codec only: see StreamWebSocket#setReadBatch. */
  setReadBatch?: (batch: ReadBatch) => void
}

const kStream = Symbol('gangway.streamSocket')

interface WithStream {
  [kStream]?: StreamWebSocket
}

type SetSocket = (this: WebSocket, socket: Duplex, head: Buffer, options: object) => void

/** A ws `WebSocket` subclass for `new WebSocketServer({ WebSocket })` that streams where it can. */
export function streamingWebSocketClass(options: StreamSocketOptions): typeof WebSocket {
  const wsSetSocket = (WebSocket.prototype as unknown as { setSocket: SetSocket }).setSocket
  if (typeof wsSetSocket !== 'function')
    throw new Error(
      'this ws release has no WebSocket#setSocket: the streaming data plane cannot start',
    )
  return class StreamingWebSocket extends WebSocket {
    setSocket(socket: Duplex, head: Buffer, wsOptions: object): void {
      if (this.extensions !== '') {
        wsSetSocket.call(this, socket, head, wsOptions)
        return
      }
      ;(this as WithStream)[kStream] = new StreamWebSocket(socket, head, this.protocol, options)
    }
  }
}

/** The socket to relay over: the streaming one when ws handed it over, else ws's own. */
export function relaySocketOf(ws: WebSocket): RelaySocket {
  const stream = (ws as WithStream)[kStream]
  return stream === undefined ? ws : asRelaySocket(stream)
}

/**
 * A streaming socket as the bridge sees it. It has every member the bridge uses; only the types differ
 * (its `on` returns itself, not a ws `WebSocket`).
 */
export function asRelaySocket(stream: StreamWebSocket): RelaySocket {
  return stream as unknown as RelaySocket
}
