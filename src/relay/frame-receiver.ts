/**
 * @module relay/frame-receiver
 * The streaming parser of client frames (RFC 6455 5.2), a push parser fed one socket read at a time. It
 * reads each header as its bytes arrive (they may straddle reads), unmasks payload in place, and hands
 * binary payload on as slices of the read it came in, never assembling a binary message: a message may be
 * any size, and memory stays one read. Text messages (held whole to validate their UTF-8), control frames
 * (at most 125 bytes) and close frames are delivered whole. It is as strict as ws's receiver, rule for rule
 * and close code for close code (docs/protocol.md §2), except that binary data has no size limit.
 * Knows nothing of sockets, targets or the gangway.v1 protocol.
 */
import { isUtf8 } from 'node:buffer'
import { FrameMask } from './frame-mask.js'

/** A client broke RFC 6455; `closeCode` is what the server answers with, `code` names the rule (ws's codes). */
export class FrameError extends Error {
  override name = 'FrameError'
  constructor(
    readonly code: string,
    message: string,
    readonly closeCode: number,
  ) {
    super(message)
  }
}

/** Where the receiver delivers what it parsed. Every Buffer is valid only during the call unless noted. */
export interface FrameSink {
  /**
   * A slice of a binary message, unmasked, in order. It is a view into the read it arrived in (not a
   * copy): the sink may keep it only as long as that read's buffer is not reused. An empty frame gives an
   * empty slice. `first`: the first slice of its message.
   */
  binary(data: Buffer, first: boolean): void
  /** A whole text message, valid UTF-8 (a fresh buffer the sink may keep). */
  text(message: Buffer): void
  ping(payload: Buffer): void
  pong(payload: Buffer): void
  /** A close frame (1005 when it had no code). Nothing after it is parsed. */
  close(code: number, reason: Buffer): void
  /** A protocol violation. Nothing after it is parsed. */
  error(err: FrameError): void
}

export interface FrameLimits {
  /** Largest text message, in bytes over all its fragments; above it: 1009. 0 = no limit. */
  readonly maxTextBytes: number
  /** Most fragments of one text message; above it: 1008 (as ws's `maxFragments`). 0 = no limit. */
  readonly maxTextFragments: number
}

const enum State {
  Info,
  Length16,
  Length64,
  Mask,
  Payload,
  Done,
}

const OP_CONTINUATION = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9
const OP_PONG = 0xa

/** 2^53 − 1 is the largest length a JavaScript number holds exactly: the upper 32 bits stop at 2^21 − 1. */
const MAX_LENGTH_HIGH_WORD = 2 ** 21 - 1
const EMPTY = Buffer.alloc(0)

export class FrameReceiver {
  readonly #sink: FrameSink
  readonly #limits: FrameLimits
  readonly #mask = new FrameMask()
  /** Header bytes that straddle two reads (at most 8 at a time: the 64-bit length); made when first needed. */
  #part: Buffer | undefined
  #partLength = 0
  /** Control frame payload that straddles reads (at most 125 bytes); made when first needed. */
  #control: Buffer | undefined
  /** The payload of the control frame being parsed: a view into the read when it came whole in one. */
  #controlPayload: Buffer = EMPTY

  #state = State.Info
  #fin = false
  #opcode = 0
  #masked = false
  #payloadLength = 0
  #payloadDone = 0
  /** The opcode of the data message in progress (0: none). */
  #messageOpcode = 0
  #textBytes = 0
  #textFragments = 0
  #textParts: Buffer[] = []
  /** A slice of the binary message in progress was delivered. */
  #binaryStarted = false

  // The read being parsed.
  #chunk: Buffer = EMPTY
  #pos = 0
  #src: Buffer = EMPTY
  #off = 0

  constructor(sink: FrameSink, limits: FrameLimits) {
    this.#sink = sink
    this.#limits = limits
  }

  /** True once a close frame or an error ended parsing. */
  get done(): boolean {
    return this.#state === State.Done
  }

  /** Stops parsing for good (the socket is going away). */
  stop(): void {
    this.#state = State.Done
    this.#textParts = []
  }

  /** Parses one read. Payload slices handed to the sink are views into `chunk`. */
  write(chunk: Buffer): void {
    this.#chunk = chunk
    this.#pos = 0
    while (this.#state !== State.Done && this.#pos < chunk.length) {
      switch (this.#state) {
        case State.Info:
          if (this.#take(2)) this.#info(this.#src[this.#off]!, this.#src[this.#off + 1]!)
          break
        case State.Length16:
          if (this.#take(2)) this.#haveLength(this.#src.readUInt16BE(this.#off))
          break
        case State.Length64:
          if (this.#take(8)) this.#length64()
          break
        case State.Mask:
          if (this.#take(4)) {
            this.#mask.set(this.#src, this.#off)
            this.#startPayload()
          }
          break
        case State.Payload:
          this.#payload()
          break
      }
    }
    this.#chunk = EMPTY
  }

  /** Makes `n` header bytes available at `#src[#off]`, from the read itself or from the straddle buffer. */
  #take(n: number): boolean {
    const chunk = this.#chunk
    const available = chunk.length - this.#pos
    if (this.#partLength === 0 && available >= n) {
      this.#src = chunk
      this.#off = this.#pos
      this.#pos += n
      return true
    }
    const part = (this.#part ??= Buffer.alloc(8))
    const copied = Math.min(n - this.#partLength, available)
    chunk.copy(part, this.#partLength, this.#pos, this.#pos + copied)
    this.#partLength += copied
    this.#pos += copied
    if (this.#partLength < n) return false
    this.#partLength = 0
    this.#src = part
    this.#off = 0
    return true
  }

  /** The first two bytes: the checks ws makes, in ws's order (so the first rule broken names the code). */
  #info(b0: number, b1: number): void {
    if ((b0 & 0x30) !== 0)
      return this.#fail('WS_ERR_UNEXPECTED_RSV_2_3', 'RSV2 and RSV3 must be clear')
    const rsv1 = (b0 & 0x40) !== 0
    // No extension is negotiated on this path (permessage-deflate stays with ws), so RSV1 is always wrong.
    if (rsv1) return this.#fail('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be clear')
    const fin = (b0 & 0x80) !== 0
    let opcode = b0 & 0x0f
    const length = b1 & 0x7f
    if (opcode === OP_CONTINUATION) {
      if (this.#messageOpcode === 0) return this.#fail('WS_ERR_INVALID_OPCODE', 'invalid opcode 0')
      opcode = this.#messageOpcode
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#messageOpcode !== 0)
        return this.#fail('WS_ERR_INVALID_OPCODE', `invalid opcode ${opcode}`)
    } else if (opcode === OP_CLOSE || opcode === OP_PING || opcode === OP_PONG) {
      if (!fin) return this.#fail('WS_ERR_EXPECTED_FIN', 'FIN must be set')
      if (length > 125 || (opcode === OP_CLOSE && length === 1))
        return this.#fail(
          'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH',
          `invalid payload length ${length}`,
        )
    } else {
      return this.#fail('WS_ERR_INVALID_OPCODE', `invalid opcode ${opcode}`)
    }
    if (!fin && this.#messageOpcode === 0) this.#messageOpcode = opcode
    this.#masked = (b1 & 0x80) !== 0
    // A server only ever receives masked frames (RFC 6455 5.1).
    if (!this.#masked) return this.#fail('WS_ERR_EXPECTED_MASK', 'MASK must be set')
    this.#fin = fin
    this.#opcode = opcode
    if (length === 126) this.#state = State.Length16
    else if (length === 127) this.#state = State.Length64
    else this.#haveLength(length)
  }

  #length64(): void {
    const high = this.#src.readUInt32BE(this.#off)
    if (high > MAX_LENGTH_HIGH_WORD) {
      this.#error(
        'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
        'Unsupported WebSocket frame: payload length > 2^53 - 1',
        1009,
      )
      return
    }
    this.#haveLength(high * 2 ** 32 + this.#src.readUInt32BE(this.#off + 4))
  }

  #haveLength(length: number): void {
    this.#payloadLength = length
    if (length > 0 && this.#opcode === OP_TEXT) {
      // Text is held whole to validate it, so only text counts against the message limit.
      this.#textBytes += length
      const max = this.#limits.maxTextBytes
      if (max > 0 && this.#textBytes > max) {
        this.#error('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 'Max payload size exceeded', 1009)
        return
      }
    }
    this.#state = State.Mask
  }

  #startPayload(): void {
    this.#payloadDone = 0
    this.#state = State.Payload
    this.#controlPayload = EMPTY
    if (this.#payloadLength === 0) this.#frameDone()
  }

  #payload(): void {
    const chunk = this.#chunk
    const n = Math.min(this.#payloadLength - this.#payloadDone, chunk.length - this.#pos)
    const slice = chunk.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    this.#mask.unmask(slice, this.#payloadDone)
    const offset = this.#payloadDone
    this.#payloadDone += n
    const opcode = this.#opcode
    if (opcode === OP_BINARY) this.#binarySlice(slice)
    else if (opcode === OP_TEXT) this.#textParts.push(Buffer.from(slice))
    // A whole control payload is handed on as a view, as binary slices are.
    else if (n === this.#payloadLength) this.#controlPayload = slice
    else {
      const control = (this.#control ??= Buffer.alloc(125))
      slice.copy(control, offset)
      this.#controlPayload = control.subarray(0, this.#payloadLength)
    }
    if (this.#payloadDone === this.#payloadLength && this.#state === State.Payload)
      this.#frameDone()
  }

  #frameDone(): void {
    this.#state = State.Info
    const opcode = this.#opcode
    if (opcode === OP_BINARY) {
      if (this.#payloadLength === 0) this.#binarySlice(EMPTY)
      if (this.#fin) {
        this.#messageOpcode = 0
        this.#binaryStarted = false
      }
      return
    }
    if (opcode === OP_TEXT) {
      const max = this.#limits.maxTextFragments
      if (max > 0 && ++this.#textFragments > max) {
        this.#error('WS_ERR_TOO_MANY_BUFFERED_PARTS', 'Too many message fragments', 1008)
        return
      }
      if (this.#fin) this.#textDone()
      return
    }
    const payload = this.#controlPayload
    this.#controlPayload = EMPTY
    if (opcode === OP_PING) this.#sink.ping(payload)
    else if (opcode === OP_PONG) this.#sink.pong(payload)
    else this.#closeFrame(payload)
  }

  #binarySlice(slice: Buffer): void {
    const first = !this.#binaryStarted
    this.#binaryStarted = true
    this.#sink.binary(slice, first)
  }

  #textDone(): void {
    const parts = this.#textParts
    const message = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#textBytes)
    this.#textParts = []
    this.#textBytes = 0
    this.#textFragments = 0
    this.#messageOpcode = 0
    if (!isUtf8(message)) return this.#fail('WS_ERR_INVALID_UTF8', 'invalid UTF-8 sequence', 1007)
    this.#sink.text(message)
  }

  #closeFrame(payload: Buffer): void {
    if (payload.length === 0) {
      this.stop()
      this.#sink.close(1005, EMPTY)
      return
    }
    const code = payload.readUInt16BE(0)
    if (!isValidCloseCode(code))
      return this.#fail('WS_ERR_INVALID_CLOSE_CODE', `invalid status code ${code}`)
    const reason = payload.subarray(2)
    if (!isUtf8(reason)) return this.#fail('WS_ERR_INVALID_UTF8', 'invalid UTF-8 sequence', 1007)
    this.stop()
    this.#sink.close(code, Buffer.from(reason))
  }

  /** A malformed frame: the message says which rule (ws's wording, so logs read the same). */
  #fail(code: string, message: string, closeCode = 1002): void {
    this.#error(code, `Invalid WebSocket frame: ${message}`, closeCode)
  }

  #error(code: string, message: string, closeCode: number): void {
    this.stop()
    this.#sink.error(new FrameError(code, message, closeCode))
  }
}

/** Close codes a peer may send (RFC 6455 7.4; 1004-1006 and 1015 are reserved; 3000-4999 registered/private). */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  )
}
