/**
 * @module relay/control-channel
 * The daemon's side of `gangway.v1` for one tunnel (docs/protocol.md): the `open` message, half-close
 * (`eof`) both ways, and credit both ways. The bridge hands it the sockets and a few hooks and routes the
 * socket events here instead of to its raw-mode listeners, so raw mode pays nothing for any of this.
 * Knows nothing of tokens, HTTP or logging, like the bridge.
 */
import type { Socket } from 'node:net'
import type { RawData } from 'ws'
import type { RelaySocket } from './handover.js'
import type { Initiator } from './tunnel-result.js'
import {
  decodeClientMessage,
  encodeCredit,
  encodeDrain,
  encodeOpen,
  EOF_MESSAGE,
} from './control-messages.js'
import { publishBackpressure } from '../events.js'
import { CloseCode, INITIAL_CREDIT } from '../protocol.js'

/** What the control channel needs from the bridge. */
export interface ControlHost {
  readonly id: number
  readonly ws: RelaySocket
  readonly tcp: Socket
  readonly highWaterMarkBytes: number
  isFinished(): boolean
  /** True while the bridge holds the target for its own high-water mark. */
  isTargetPaused(): boolean
  /** Relays one target chunk to the client as raw mode does (counting, high-water mark). */
  sendDown(chunk: Buffer): void
  /** Writes client payload to the target (small slices of one read are joined into one write). */
  writeUp(chunk: Buffer): void
  /** Client bytes the bridge holds for the target: its socket's queue and what is still being joined. */
  queuedUp(): number
  /** Writes what is still being joined (before the target's side is ended). */
  flushUp(): void
  /** Counts client payload bytes (result, liveness, idle timer). */
  receivedUp(bytes: number): void
  markAlive(): void
  finish(initiator: Initiator, code: number, reason: string): void
}

/** The socket listeners for a v1 tunnel, and what the bridge asks of it. */
export interface ControlChannel {
  readonly wsOnMessage: (data: RawData, isBinary: boolean, first?: boolean) => void
  readonly tcpOnData: (chunk: Buffer) => void
  readonly tcpOnDrain: () => void
  readonly tcpOnEnd: () => void
  /** True while the target is paused because the client's window is spent. */
  holdsTarget(): boolean
  /** Target bytes held beyond the client's window. */
  heldBytes(): number
  /** The tunnel is ending: forget held bytes (the bridge resumes the target to drain it). */
  drop(): void
  /** Tells the client the daemon is draining (`drain`, docs/protocol.md §3). */
  announceDrain(ms: number): void
}

/** Sends `open` and the first send credit, and returns the listeners. */
export function startControlChannel(host: ControlHost): ControlChannel {
  const { ws, tcp } = host
  // Target → client: the client's remaining window, and target bytes beyond it.
  let credit = INITIAL_CREDIT
  let held: Buffer | undefined
  let creditPaused = false
  // Client → target: it may send `upGranted` bytes in all; more is granted as the target drains. The
  // WebSocket is never paused in v1 (that would also stall the client's credit and eof messages).
  const upWindow = Math.max(host.highWaterMarkBytes, INITIAL_CREDIT)
  let upGranted = INITIAL_CREDIT
  let upReceived = 0
  /** The window as it stood when the binary message in progress began (see wsOnMessage). */
  let messageGranted = INITIAL_CREDIT
  let upBlocked = false
  let clientEof = false
  let targetEof = false
  let eofSent = false

  tcp.allowHalfOpen = true // a target FIN must not end our side: the client may still be writing
  const { remoteAddress, remotePort, localAddress, localPort } = tcp
  ws.send(encodeOpen({ remoteAddress, remotePort, localAddress, localPort }))
  grantUp()

  /**
   * `first` is false for the later slices of a binary message on the streaming codec (ws delivers whole
   * messages). A message is checked against the window granted before it began, as if it had arrived
   * whole: credit the daemon grants while it streams was not seen by the client when it sent it.
   */
  function wsOnMessage(data: RawData, isBinary: boolean, first = true): void {
    if (host.isFinished()) return
    if (isBinary) {
      const chunk = data as Buffer
      if (first) messageGranted = upGranted
      if (clientEof) badMessage('data after eof')
      else if (upReceived + chunk.length > messageGranted)
        badMessage('data beyond the granted window')
      else {
        upReceived += chunk.length
        host.receivedUp(chunk.length)
        // Over the byte limit the tunnel has just ended (and the target's side with it): drop the chunk, as
        // raw mode does. Writing after that end would destroy the socket and lose what is still queued.
        if (host.isFinished()) return
        host.writeUp(chunk) // bounded by the window, not by pausing
        grantUp()
      }
      return
    }
    host.markAlive()
    let message
    try {
      message = decodeClientMessage(data as Buffer)
    } catch (err) {
      badMessage((err as Error).message)
      return
    }
    if (message.type === 'credit') grantCredit(message.bytes)
    else clientSentEof()
  }

  function grantCredit(bytes: number): void {
    if (credit + bytes > Number.MAX_SAFE_INTEGER) {
      badMessage('credit window overflow')
      return
    }
    credit += bytes
    if (held !== undefined) releaseHeld()
  }

  /** Grants the client more send window once the target has taken at least half of it. */
  function grantUp(): void {
    if (host.isFinished() || clientEof) return
    const more = upWindow - host.queuedUp() - (upGranted - upReceived)
    if (more < upWindow / 2) {
      // The client has used its whole window: it is now held back by the target (observable as 'up').
      if (upReceived === upGranted && !upBlocked) {
        upBlocked = true
        publishBackpressure(host.id, 'up', true)
      }
      return
    }
    upGranted += more
    ws.send(encodeCredit(more))
    if (upBlocked) {
      upBlocked = false
      publishBackpressure(host.id, 'up', false)
    }
  }

  function clientSentEof(): void {
    if (clientEof) {
      badMessage('eof sent twice')
      return
    }
    clientEof = true
    host.flushUp()
    tcp.end() // FIN after everything already written; the target may keep sending
    if (eofSent) host.finish('server', CloseCode.NORMAL, 'both sides closed') // we send the close frame
  }

  function tcpOnData(chunk: Buffer): void {
    if (host.isFinished()) return
    if (held === undefined && chunk.length <= credit) {
      credit -= chunk.length
      host.sendDown(chunk)
      return
    }
    held = held === undefined ? chunk : Buffer.concat([held, chunk])
    releaseHeld()
  }

  /** Sends as much of the held bytes as the window allows; reads the target again once all are sent. */
  function releaseHeld(): void {
    const bytes = held as Buffer
    const n = Math.min(credit, bytes.length)
    if (n > 0) {
      credit -= n
      host.sendDown(bytes.subarray(0, n))
    }
    if (n < bytes.length) {
      held = bytes.subarray(n)
      if (!creditPaused) {
        creditPaused = true
        tcp.pause()
      }
      return
    }
    held = undefined
    if (creditPaused) {
      creditPaused = false
      if (!host.isTargetPaused()) tcp.resume()
    }
    if (targetEof && !eofSent) sendEof()
  }

  function tcpOnEnd(): void {
    if (host.isFinished()) return
    targetEof = true
    if (held === undefined) sendEof()
  }

  function sendEof(): void {
    eofSent = true
    ws.send(EOF_MESSAGE)
    if (clientEof) host.finish('target', CloseCode.NORMAL, 'both sides closed')
  }

  function badMessage(reason: string): void {
    host.finish('server', CloseCode.BAD_MESSAGE, reason)
  }

  return {
    wsOnMessage,
    tcpOnData,
    tcpOnDrain: grantUp,
    tcpOnEnd,
    holdsTarget: () => creditPaused,
    heldBytes: () => held?.length ?? 0,
    announceDrain(ms: number): void {
      if (!host.isFinished()) ws.send(encodeDrain(ms))
    },
    drop(): void {
      held = undefined
      if (creditPaused) {
        creditPaused = false
        tcp.resume()
      }
    },
  }
}
