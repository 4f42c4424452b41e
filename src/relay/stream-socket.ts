/**
 * @module relay/stream-socket
 * The server end of one upgraded WebSocket on the streaming codec: the parts of ws's `WebSocket` the bridge
 * uses (`send`, `ping`, `close`, `terminate`, `pause`/`resume`, `bufferedAmount`; the `message`, `pong`,
 * `close` and `error` events) with ws's closing handshake, its close codes and its timeouts, but binary
 * messages arrive as slices, as they are read: a `message` event with `isBinary` true is a piece of a
 * message, not a whole one. Owns the socket after the 101; knows nothing of targets or tokens.
 *
 * Once a consumer brackets its reads (`setReadBatch`), a plain TCP or unix socket reads into buffers the
 * codec supplies (relay/user-buffer, relay/read-buffers): the shared one while reads are small, reused slabs
 * of its own in a bulk transfer, whose slices are views valid until the batch ends unless the consumer says
 * it kept them.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import {
  FrameReceiver,
  type FrameError,
  type FrameLimits,
  type FrameSink,
} from './frame-receiver.js'
import { closePayload, OPCODE, writeFrame } from './frame-sender.js'
import { ReadBuffers } from './read-buffers.js'
import { readIntoUserBuffers } from './user-buffer.js'

export interface StreamSocketOptions extends FrameLimits {
  /** How long a closing handshake may take before the socket is destroyed (ws's `closeTimeout`). */
  readonly closeTimeoutMs: number
  /** Pongs owed to a client that pings without reading, before it is cut off (ws's `maxPendingAutoPongs`). */
  readonly maxPendingPongs: number
}

const CONNECTING = 0
const OPEN = 1
const CLOSING = 2
const CLOSED = 3
const EMPTY = Buffer.alloc(0)

type SendCallback = (err?: Error | null) => void

/** How a consumer takes the messages of one socket read at a time (see `setReadBatch`). */
export interface ReadBatch {
  /** Before the messages of one read are emitted (e.g. cork the socket they are written to). */
  begin(): void
  /** After them: true if the consumer still holds views of their bytes (e.g. a write not yet done). */
  end(): boolean
  /** After an `end()` that returned true: runs `done` once the consumer holds those views no more. */
  whenReleased(done: () => void): void
  /** How many bytes the consumer holds at most before it pauses the socket. */
  readonly queueBytes: number
}

export class StreamWebSocket extends EventEmitter {
  readonly CONNECTING = CONNECTING
  readonly OPEN = OPEN
  readonly CLOSING = CLOSING
  readonly CLOSED = CLOSED
  readonly protocol: string
  /** Always empty: a connection that negotiated an extension stays on ws's path. */
  readonly extensions = ''
  readonly #socket: Duplex
  readonly #receiver: FrameReceiver
  readonly #options: StreamSocketOptions
  #readyState = OPEN
  #paused = false
  #closeFrameSent = false
  #closeFrameReceived = false
  #errored = false
  #closeCode = 1006
  #closeReason: Buffer = EMPTY
  #closeTimer: NodeJS.Timeout | undefined
  #pendingPongs = 0
  #batch: ReadBatch | undefined
  #reads: ReadBuffers | undefined

  constructor(socket: Duplex, head: Buffer, protocol: string, options: StreamSocketOptions) {
    super()
    this.#socket = socket
    this.protocol = protocol
    this.#options = options
    this.#receiver = new FrameReceiver(this.#sink(), options)
    const net = socket as Partial<Socket>
    net.setTimeout?.(0)
    net.setNoDelay?.(true)
    // Bytes that came with the upgrade request are parsed first, when the data listener below runs.
    if (head.length > 0) socket.unshift(head)
    socket.on('data', this.#socketOnData)
    socket.on('end', this.#socketOnEnd)
    socket.on('close', this.#socketOnClose)
    socket.on('error', this.#socketOnError)
  }

  get readyState(): number {
    return this.#readyState
  }

  /** Bytes queued for the client in user space (ws's `bufferedAmount`: the socket's write queue). */
  get bufferedAmount(): number {
    return this.#socket.writableLength
  }

  get isPaused(): boolean {
    return this.#paused
  }

  /** Sends a Buffer as one binary frame, a string as one text frame (`{ binary: true }`: as binary). */
  send(
    data: Buffer | string,
    options?: { binary?: boolean } | SendCallback,
    cb?: SendCallback,
  ): void {
    const callback = typeof options === 'function' ? options : cb
    const binary =
      typeof options === 'object'
        ? (options.binary ?? typeof data !== 'string')
        : typeof data !== 'string'
    if (this.#readyState !== OPEN) {
      if (callback !== undefined) process.nextTick(callback, notOpen(this.#readyState))
      return
    }
    const payload = typeof data === 'string' ? Buffer.from(data) : data
    writeFrame(this.#socket, binary ? OPCODE.binary : OPCODE.text, payload, callback)
  }

  ping(data: Buffer = EMPTY): void {
    if (this.#readyState !== OPEN) return
    writeFrame(this.#socket, OPCODE.ping, data)
  }

  /**
   * Starts the closing handshake (or answers the client's): sends a close frame, then ends the socket once
   * the client's close frame came (or it broke the protocol); destroys it after the close timeout.
   */
  close(code?: number, reason?: string | Buffer): void {
    if (this.#readyState === CLOSED) return
    if (this.#readyState === CLOSING) {
      if (this.#closeFrameSent && (this.#closeFrameReceived || this.#errored)) this.#socket.end()
      return
    }
    this.#readyState = CLOSING
    writeFrame(this.#socket, OPCODE.close, closePayload(code, reason), this.#closeFrameOnSent)
    this.#closeTimer = setTimeout(this.#closeOnTimeout, this.#options.closeTimeoutMs)
  }

  terminate(): void {
    if (this.#readyState === CLOSED) return
    this.#readyState = CLOSING
    this.#receiver.stop()
    this.#socket.destroy()
  }

  pause(): void {
    if (this.#readyState === CLOSED) return
    this.#paused = true
    this.#socket.pause()
  }

  resume(): void {
    if (this.#readyState === CLOSED) return
    this.#paused = false
    this.#socket.resume()
  }

  /**
   * From now on, the binary slices of each socket read are emitted between `batch.begin()` and
   * `batch.end()`, and a plain TCP or unix socket reads into buffers the codec supplies (relay/user-buffer)
   * instead of a fresh one from Node per read: small reads (an idle or interactive tunnel) into the buffer
   * every socket shares, copied out at once, so a tunnel costs no buffer of its own; once a read is large
   * (a bulk transfer), into reused slabs of its own, whose slices are valid only until `end()` returns
   * unless `end()` says they were kept (their buffer is then not reused before `whenReleased` calls back).
   */
  setReadBatch(batch: ReadBatch): void {
    this.#batch = batch
    if (this.#reads !== undefined) return
    const reads = new ReadBuffers(batch.queueBytes)
    const socket = this.#socket as Socket
    if (!readIntoUserBuffers(socket, { buffer: reads.next, callback: this.#socketOnRead })) return
    this.#reads = reads
    // Reads now bypass the stream, so its pause and resume no longer reach the handle by themselves:
    // net's pause() and resume() stop or start the handle in this mode. Bytes the stream already holds
    // still come as 'data', before any later read.
    if (this.#paused) socket.pause()
    else socket.resume()
  }

  #sink(): FrameSink {
    return {
      // A third argument ws does not have: true on the first slice of a message.
      binary: (data, first) => this.emit('message', data, true, first),
      text: (message) => this.emit('message', message, false),
      ping: (payload) => this.#receivedPing(payload),
      pong: (payload) => this.emit('pong', payload),
      close: (code, reason) => this.#receivedClose(code, reason),
      error: (err) => this.#receivedError(err),
    }
  }

  #receivedPing(payload: Buffer): void {
    if (this.#readyState === OPEN) {
      // A client that pings and never reads would have us queue pongs without end.
      if (this.#pendingPongs >= this.#options.maxPendingPongs) {
        this.terminate()
        return
      }
      this.#pendingPongs++
      writeFrame(this.#socket, OPCODE.pong, Buffer.from(payload), this.#pongOnSent)
    }
    this.emit('ping', payload)
  }

  #receivedClose(code: number, reason: Buffer): void {
    this.#closeFrameReceived = true
    this.#closeCode = code
    this.#closeReason = reason
    this.#stopReading()
    if (code === 1005) this.close()
    else this.close(code, reason)
  }

  #receivedError(err: FrameError): void {
    this.#errored = true
    this.#stopReading()
    this.close(err.closeCode)
    this.emit('error', err)
  }

  /** After a close frame or an error, read on (and drop) only to see the client's FIN. */
  #stopReading(): void {
    this.#socket.off('data', this.#socketOnData)
    process.nextTick(resumeSocket, this.#socket)
  }

  readonly #closeFrameOnSent = (err?: Error | null): void => {
    if (err) return // the socket's error listener handles it
    this.#closeFrameSent = true
    if (this.#closeFrameReceived || this.#errored) this.#socket.end()
  }

  readonly #closeOnTimeout = (): void => {
    this.#socket.destroy()
  }

  readonly #pongOnSent = (): void => {
    this.#pendingPongs--
  }

  readonly #socketOnData = (chunk: Buffer): void => {
    const batch = this.#batch
    const receiver = this.#receiver
    if (batch === undefined) {
      receiver.write(chunk)
      return
    }
    batch.begin()
    receiver.write(chunk) // Node's own buffer: whatever the consumer keeps of it stays valid
    batch.end()
  }

  /** A read into a reused buffer (after `setReadBatch`). Returning true keeps the socket reading. */
  readonly #socketOnRead = (bytes: number, buffer: Buffer): boolean => {
    const reads = this.#reads as ReadBuffers
    const receiver = this.#receiver
    if (receiver.done) {
      void reads.done(bytes, buffer, false) // after a close frame: read on only to see the FIN
      return true
    }
    // The shared buffer is the next read of every other socket: what may be kept is copied first.
    const shared = reads.isShared(buffer)
    const chunk = shared ? Buffer.from(buffer.subarray(0, bytes)) : buffer.subarray(0, bytes)
    const batch = this.#batch as ReadBatch
    batch.begin()
    receiver.write(chunk)
    const giveBack = reads.done(bytes, buffer, batch.end() && !shared)
    if (giveBack !== undefined) batch.whenReleased(giveBack)
    return true
  }

  readonly #socketOnEnd = (): void => {
    this.#readyState = CLOSING
    // After a clean closing handshake our side has ended already; ending it again only builds an
    // ERR_STREAM_ALREADY_FINISHED (a stack trace per connection, for nobody).
    if (!this.#socket.writableEnded) this.#socket.end()
  }

  readonly #socketOnError = (): void => {
    this.#readyState = CLOSING
    this.#socket.destroy()
  }

  readonly #socketOnClose = (): void => {
    const socket = this.#socket
    socket.off('data', this.#socketOnData)
    socket.off('end', this.#socketOnEnd)
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer)
    // A paused socket may still hold bytes the client sent before it went away: parse them, as ws does.
    if (!this.#receiver.done && socket.readableLength > 0) {
      const rest = socket.read(socket.readableLength) as Buffer | null
      if (rest !== null) this.#receiver.write(rest)
    }
    this.#receiver.stop()
    this.#readyState = CLOSED
    this.emit('close', this.#closeCode, this.#closeReason)
  }
}

function resumeSocket(socket: Duplex): void {
  socket.resume()
}

function notOpen(state: number): Error {
  return new Error(
    `WebSocket is not open: readyState ${state} (${state === CLOSING ? 'CLOSING' : 'CLOSED'})`,
  )
}
