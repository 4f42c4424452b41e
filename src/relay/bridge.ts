/**
 * @module relay/bridge
 * One WebSocket ⇄ one TCP (or unix) socket: byte-exact relay, backpressure both ways, liveness, and the
 * tunnel's single teardown path. Knows nothing of tokens, HTTP or logging: it reports one `TunnelResult`
 * when both sockets are closed and every timer is cleared. With the `gangway.v1` subprotocol it also speaks
 * the control channel (open, eof both ways, credit; docs/protocol.md) through separate listeners, so the
 * raw-mode per-chunk path is untouched.
 */
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { RawData } from 'ws'
import type { RelaySocket } from './handover.js'
import type { TextPolicy } from '../config/options.js'
import { CloseCode, SUBPROTOCOL_V1 } from '../protocol.js'
import { startControlChannel, type ControlChannel } from './control-channel.js'
import { timer } from '../timer.js'
import { publishBackpressure } from '../events.js'
import type { Recorder } from './record.js'
import type { Initiator, TunnelResult } from './tunnel-result.js'
import { targetReads } from './target-reads.js'

/** How long a closing tunnel may take to flush and exchange close frames before it is cut. */
export const CLOSE_TIMEOUT_MS = 30_000

export type { Initiator, TunnelResult } from './tunnel-result.js'

export interface BridgeOptions {
  readonly id: number
  readonly highWaterMarkBytes: number
  readonly textPolicy: TextPolicy
  readonly idleTimeoutMs: number
  /** Session recording (`--record`); undefined when off, which costs nothing per chunk. */
  readonly recorder?: Recorder
  /** Payload bytes (both directions together) the tunnel may carry; beyond it, close 4413. */
  readonly maxBytes?: number
}

/** A live tunnel as the server sees it. */
export interface Tunnel {
  readonly id: number
  /**
   * Close from our side (shutdown, policy); pending bytes are flushed first where the peer allows. A tunnel
   * that is already ending (waiting for a peer's FIN or close frame) is torn down at once.
   */
  close(code: number, reason: string): void
  /** One heartbeat round: terminates a peer that did not answer the previous ping, else pings it. */
  heartbeat(): void
  /** The daemon is draining and closes this tunnel within `ms`: a gangway.v1 client is told so. */
  announceDrain(ms: number): void
  /** Bytes the daemon currently holds for this tunnel in user space, both directions. */
  heldBytes(): number
  /** Payload bytes relayed so far: up = client → target, down = target → client. */
  bytes(): { up: number; down: number }
  readonly closed: Promise<TunnelResult>
}

const SEND_OPTIONS = { binary: true } as const
const EMPTY = Buffer.alloc(0)
/** Client payload slices below this size are joined per read (see writeUp), up to JOIN_BYTES a write. */
const JOIN_BELOW = 1024
const JOIN_BYTES = 16 * 1024

const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: 1008,
}

/**
 * Relays bytes between `ws` (whose raw socket is `wsSocket`) and `tcp` until either side ends.
 * Memory per tunnel is bounded: the WebSocket is paused while the target's write buffer is full, and the
 * target is paused while more than `highWaterMarkBytes` wait to be sent to the client.
 */
export function bridge(
  ws: RelaySocket,
  wsSocket: Duplex,
  tcp: Socket,
  options: BridgeOptions,
): Tunnel {
  const startedAt = performance.now()
  const rejectText = options.textPolicy === 'reject'
  const tracksIdle = options.idleTimeoutMs > 0
  const recorder = options.recorder
  const byteLimit = options.maxBytes ?? Infinity
  const idleTimer = timer(tunnelOnIdleTimer, options.idleTimeoutMs)
  const lingerTimer = timer(tunnelOnLingerTimer, CLOSE_TIMEOUT_MS + 1_000)
  let bytesUp = 0
  /** Small client slices of the read being handled, joined into one target write (see writeUp). */
  const joinParts: Buffer[] = []
  let joinBytes = 0
  let inBatch = false
  let bytesDown = 0
  let lastActivity = startedAt
  let wsPaused = false
  let tcpPaused = false
  let alive = true
  let finished = false
  let wsClosed = false
  let tcpClosed = false
  let tcpEnded = false
  let result: Omit<TunnelResult, 'bytesUp' | 'bytesDown' | 'durationMs'> | undefined
  let resolveClosed: (r: TunnelResult) => void = () => {}
  const closed = new Promise<TunnelResult>((resolve) => (resolveClosed = resolve))
  const v1: ControlChannel | undefined =
    ws.protocol === SUBPROTOCOL_V1
      ? startControlChannel({
          id: options.id,
          ws,
          tcp,
          highWaterMarkBytes: options.highWaterMarkBytes,
          isFinished: () => finished,
          isTargetPaused: () => tcpPaused,
          sendDown: tcpOnData,
          writeUp,
          queuedUp,
          flushUp: flushJoined,
          receivedUp: countUp,
          markAlive: () => void (alive = true),
          finish,
        })
      : undefined
  ws.on('message', v1 ? v1.wsOnMessage : wsOnMessage)
  // On the streaming codec the client's reads come a batch at a time: their slices are written to the
  // target corked (one writev per read), and the WebSocket is paused by the bytes queued for the target
  // (the high-water mark), not by Node's 16 KiB default.
  const batched = ws.setReadBatch !== undefined
  ws.setReadBatch?.({
    begin: tcpCork,
    end: tcpUncork,
    whenReleased: afterTargetWrites,
    queueBytes: options.highWaterMarkBytes,
  })
  ws.on('pong', wsOnPong)
  ws.on('close', wsOnClose)
  ws.on('error', wsOnError)
  const reads = targetReads(tcp)
  if (reads === undefined) {
    tcp.on('data', v1 ? v1.tcpOnData : tcpOnData)
  } else {
    // The target's reads land in reused buffers: hand ws a view where nothing can keep the bytes
    // (no recording, no gangway.v1 credit, no deflate); everywhere else, a copy.
    const zeroCopy = v1 === undefined && recorder === undefined && ws.extensions === ''
    reads.attach(
      tcp,
      zeroCopy ? tcpOnReusedData : copyInto(v1 ? v1.tcpOnData : tcpOnData),
      afterClientWrites,
      options.highWaterMarkBytes,
    )
    if (!tcpPaused && !tcp.destroyed) tcp.resume()
  }
  tcp.on('drain', v1 ? v1.tcpOnDrain : tcpOnDrain)
  tcp.on('end', tcpOnEndSeen)
  tcp.on('end', v1 ? v1.tcpOnEnd : tcpOnEnd)
  tcp.on('error', tcpOnError)
  tcp.on('close', tcpOnClose)
  idleTimer.start()

  // --- client → target ---------------------------------------------------------------------------
  function wsOnMessage(data: RawData, isBinary: boolean): void {
    if (finished) return
    if (!isBinary && rejectText) {
      finish('server', CloseCode.UNSUPPORTED_DATA, 'text messages are not accepted')
      return
    }
    const chunk = data as Buffer // binaryType 'nodebuffer': fragments arrive concatenated
    if (bytesUp + bytesDown + chunk.length > byteLimit) {
      byteLimitReached()
      return
    }
    bytesUp += chunk.length
    if (recorder !== undefined) recorder.up(chunk)
    alive = true
    if (tracksIdle) lastActivity = performance.now()
    // Pause the WebSocket instead of buffering: a slow target must slow the client down, or one client
    // could grow our heap without bound (RFC 6455 has no flow control of its own).
    if (!writeUp(chunk) && !wsPaused && !batched) pauseUp()
  }

  /**
   * Writes client payload to the target. Within one client read, slices under `JOIN_BELOW` bytes are
   * copied together into one write: a stream of tiny frames would otherwise queue one write (a hundred
   * bytes or more of bookkeeping) per payload byte, and the high-water mark counts bytes, not writes.
   */
  function writeUp(chunk: Buffer): boolean {
    if (!inBatch || chunk.length >= JOIN_BELOW) {
      flushJoined()
      return tcp.write(chunk)
    }
    joinParts.push(chunk)
    joinBytes += chunk.length
    if (joinBytes >= JOIN_BYTES) flushJoined()
    return true
  }

  function flushJoined(): void {
    if (joinBytes === 0) return
    // One slice (an echo, a keystroke) is written as it is: a view, valid as long as any other write's.
    const joined = joinParts.length === 1 ? joinParts[0]! : Buffer.concat(joinParts, joinBytes)
    joinParts.length = 0
    joinBytes = 0
    // Past the end of the target's side (a limit or a close ended it mid-read), the bytes are dropped.
    if (!tcp.writableEnded && !tcp.destroyed) tcp.write(joined)
  }

  function queuedUp(): number {
    return tcp.writableLength + joinBytes
  }

  function pauseUp(): void {
    wsPaused = true
    ws.pause()
    publishBackpressure(options.id, 'up', true)
  }

  function tcpCork(): void {
    inBatch = true
    tcp.cork()
  }

  /** The end of one client read: write its slices, and pause the client while the target lags. */
  function tcpUncork(): boolean {
    flushJoined()
    inBatch = false
    tcp.uncork()
    const queued = tcp.writableLength
    // gangway.v1 is bounded by its credit window instead; a 'drain' (writableNeedDrain) resumes us.
    if (
      queued > options.highWaterMarkBytes &&
      tcp.writableNeedDrain &&
      !wsPaused &&
      !v1 &&
      !finished
    )
      pauseUp()
    return queued > 0
  }

  /** Runs `done` when every write to the target so far has been handed to the kernel. */
  function afterTargetWrites(done: () => void): void {
    afterWrites(tcp, done)
  }

  /** gangway.v1 client bytes: counted like raw ones (result, liveness, idle). */
  function countUp(bytes: number): void {
    if (bytesUp + bytesDown + bytes > byteLimit) {
      byteLimitReached()
      return
    }
    bytesUp += bytes
    alive = true
    if (tracksIdle) lastActivity = performance.now()
  }

  function byteLimitReached(): void {
    finish('server', CloseCode.BYTE_LIMIT, `byte limit of ${byteLimit} reached`)
  }

  function tcpOnDrain(): void {
    if (!wsPaused) return
    wsPaused = false
    ws.resume()
    publishBackpressure(options.id, 'up', false)
  }

  // --- target → client ---------------------------------------------------------------------------
  function tcpOnData(chunk: Buffer): void {
    if (finished) return // the client is gone: keep reading so the target is not stuck, drop the bytes
    if (bytesUp + bytesDown + chunk.length > byteLimit) {
      byteLimitReached()
      return
    }
    bytesDown += chunk.length
    if (recorder !== undefined) recorder.down(chunk)
    if (tracksIdle) lastActivity = performance.now()
    if (ws.bufferedAmount + chunk.length < options.highWaterMarkBytes) {
      ws.send(chunk, SEND_OPTIONS)
      return
    }
    // Above the high-water mark: stop reading the target until this chunk (and all before it) has
    // been handed to the kernel. The callback fires once, on the chunk that crossed the mark.
    ws.send(chunk, SEND_OPTIONS, wsOnFlushed)
    if (!tcpPaused) {
      tcpPaused = true
      tcp.pause()
      publishBackpressure(options.id, 'down', true)
    }
  }

  /**
   * A read from the target's read buffers. A read in the socket's own slab is sent as it is (a frame
   * header, then the view: one writev); the slab is lent while the client socket still queues it.
   */
  function tcpOnReusedData(chunk: Buffer, reusable: boolean): boolean {
    if (!reusable) {
      tcpOnData(Buffer.from(chunk))
      return false
    }
    tcpOnData(chunk)
    return ws.bufferedAmount > 0
  }

  /** Runs `done` when every write to the client socket so far has been handed to the kernel. */
  function afterClientWrites(done: () => void): void {
    afterWrites(wsSocket, done)
  }

  function wsOnFlushed(err?: Error): void {
    if (err || !tcpPaused) return
    tcpPaused = false
    if (!v1?.holdsTarget()) tcp.resume()
    publishBackpressure(options.id, 'down', false)
  }

  // --- liveness ----------------------------------------------------------------------------------
  function wsOnPong(): void {
    alive = true
  }

  function heartbeat(): void {
    if (finished) return
    // While we pause the WebSocket for the target's sake we cannot read a pong; that is not the peer's fault.
    if (!alive && !wsPaused) {
      finish('server', CloseCode.ABNORMAL, 'heartbeat timeout: no pong from the client')
      return
    }
    alive = false
    ws.ping()
  }

  function tunnelOnIdleTimer(): void {
    if (finished) return
    const idleFor = performance.now() - lastActivity
    if (idleFor < options.idleTimeoutMs) {
      idleTimer.startIn(options.idleTimeoutMs - idleFor)
      return
    }
    finish(
      'server',
      CloseCode.IDLE_TIMEOUT,
      `idle timeout: no payload for ${options.idleTimeoutMs / 1000} s`,
    )
  }

  // --- ends --------------------------------------------------------------------------------------
  function tcpOnEnd(): void {
    finish('target', CloseCode.NORMAL, 'target closed the connection')
  }

  function tcpOnError(err: NodeJS.ErrnoException): void {
    finish(
      'target',
      CloseCode.INTERNAL_ERROR,
      `target connection failed (${err.code ?? 'error'})`,
      err.code,
    )
  }

  function tcpOnEndSeen(): void {
    tcpEnded = true
  }

  function tcpOnClose(): void {
    tcpClosed = true
    // In gangway.v1 a target that ended cleanly can close while the control channel still holds its last
    // bytes back for the client's credit; the channel ends the tunnel (1000) once they are delivered.
    // Any other close without an 'end' or an error is unexpected.
    if (!(v1 !== undefined && tcpEnded)) {
      finish('target', CloseCode.INTERNAL_ERROR, 'target connection closed')
    }
    maybeDone()
  }

  function wsOnError(err: Error & { code?: string; closeCode?: number }): void {
    // The streaming codec's errors carry the close code they sent; ws's are known by their code.
    const code = err.closeCode ?? WS_ERROR_CLOSE_CODES[err.code ?? ''] ?? CloseCode.PROTOCOL_ERROR
    finish('client', code, err.message, err.code)
  }

  function wsOnClose(code: number, reason: Buffer): void {
    wsClosed = true
    finish('client', code, reason.toString())
    maybeDone()
  }

  function tunnelOnLingerTimer(): void {
    tcp.destroy()
    ws.terminate()
  }

  /** The one teardown path: records the outcome once, then closes both sides as the cause requires. */
  function finish(initiator: Initiator, code: number, reason: string, error?: string): void {
    if (finished) return
    finished = true
    result = { id: options.id, code, reason, initiator, error }
    idleTimer.cancel()
    lingerTimer.start()
    // Never leave the target blocked on a full socket: read and drop what it still sends.
    v1?.drop()
    if (tcpPaused) {
      tcpPaused = false
      tcp.resume()
    }
    // Everything already sent is queued in ws ahead of the close frame, so it reaches the client first.
    if (initiator === 'server' && code === CloseCode.ABNORMAL) ws.terminate()
    else if (initiator !== 'client') closeWs(code, reason)
    // Read again so the client's close frame can arrive; later messages are dropped.
    if (wsPaused) {
      wsPaused = false
      ws.resume()
    }
    // Flush what the client sent, then FIN. After a target EOF Node ends our side itself (no half-open).
    flushJoined()
    if (initiator !== 'target') tcp.end()
  }

  function closeWs(code: number, reason: string): void {
    // Close reasons are limited to 123 bytes; ours are short, but errno text can grow.
    ws.close(code, Buffer.byteLength(reason) > 123 ? reason.slice(0, 120) : reason)
  }

  function maybeDone(): void {
    if (!wsClosed || !tcpClosed || result === undefined) return
    lingerTimer.cancel()
    idleTimer.cancel()
    resolveClosed({
      ...result,
      bytesUp,
      bytesDown,
      durationMs: Math.round(performance.now() - startedAt),
    })
  }

  return {
    id: options.id,
    closed,
    heartbeat,
    announceDrain: (ms: number) => v1?.announceDrain(ms),
    close(code: number, reason: string): void {
      // Already ending (waiting for a peer's FIN or close frame): the caller wants it gone now.
      if (finished) tunnelOnLingerTimer()
      else finish('server', code, reason)
    },
    bytes() {
      return { up: bytesUp, down: bytesDown }
    },
    heldBytes(): number {
      const tcpHeld = tcp.writableLength + tcp.readableLength + (v1?.heldBytes() ?? 0)
      return ws.bufferedAmount + wsSocket.readableLength + tcpHeld
    },
  }
}

/**
 * Runs `done` once every write queued on `socket` so far is done (an empty write queues behind them). On
 * a socket that is ending or gone it never runs: its read buffer is then left to the collector rather
 * than risk reusing memory a write may still read, and a write after end would fail the socket.
 */
function afterWrites(socket: Duplex, done: () => void): void {
  if (socket.writableEnded || socket.destroyed) return
  socket.write(EMPTY, done)
}

/** Sinks that may keep chunks (gangway.v1 credit, recording, deflate) get copies of the reads. */
function copyInto(sink: (chunk: Buffer) => void): (chunk: Buffer) => boolean {
  return function copyOfRead(chunk: Buffer): boolean {
    sink(Buffer.from(chunk))
    return false
  }
}
