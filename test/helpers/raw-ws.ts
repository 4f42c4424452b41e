/**
 * A WebSocket client over a raw TCP socket, for conformance tests: it sends frames exactly as built (any
 * opcode, bits, fragmentation, write boundaries) and records what the server sends back, frame by frame.
 */
import net from 'node:net'
import { once } from 'node:events'
import { setImmediate as tick } from 'node:timers/promises'
import { upgradeRequest } from './raw-http.js'
import { encodeFrame, type FrameSpec } from './frames.js'

export interface ServerFrame {
  opcode: number
  payload: Buffer
}

export class RawWs {
  readonly frames: ServerFrame[] = []
  #dataParts: Buffer[] = []
  dataLength = 0
  #buffer = Buffer.alloc(0)
  #waiters: Array<() => void> = []
  readonly closed: Promise<void>

  private constructor(readonly socket: net.Socket) {
    this.closed = once(socket, 'close').then(() => this.#wake())
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => this.#parse(chunk))
  }

  /** Connects and completes the handshake; rejects unless the answer is a 101. */
  static async open(port: number, headers: Record<string, string> = {}): Promise<RawWs> {
    const socket = net.connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(upgradeRequest(headers))
    let head = Buffer.alloc(0)
    while (!head.includes('\r\n\r\n')) {
      const [chunk] = (await once(socket, 'data')) as [Buffer]
      head = Buffer.concat([head, chunk])
    }
    const end = head.indexOf('\r\n\r\n') + 4
    if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 101'))
      throw new Error(head.toString())
    const client = new RawWs(socket)
    if (head.length > end) client.#parse(head.subarray(end))
    return client
  }

  /** Sends one masked frame (defaults: final, no RSV, a random mask). */
  frame(opcode: number, payload: Buffer | string, more: Partial<FrameSpec> = {}): Buffer {
    const bytes = encodeFrame({
      fin: true,
      rsv: 0,
      opcode,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      masked: true,
      mask: [0x37, 0xfa, 0x21, 0x3d],
      lengthForm: 'min',
      ...more,
    })
    return bytes
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Writes `bytes` in pieces of `size`, each in its own event-loop turn (so reads split them). */
  async sendInChunks(bytes: Buffer, size: number): Promise<void> {
    for (let at = 0; at < bytes.length; at += size) {
      this.socket.write(bytes.subarray(at, at + size))
      await tick()
    }
  }

  /** Resolves once `test()` holds (re-checked on every frame) or the socket closed. */
  async until(test: () => boolean): Promise<void> {
    while (!test() && !this.socket.destroyed) {
      await Promise.race([new Promise<void>((resolve) => this.#waiters.push(resolve)), this.closed])
    }
  }

  /** Payload of every data frame the server sent, concatenated (the echo of what went through). */
  get data(): Buffer {
    return Buffer.concat(this.#dataParts)
  }

  async echoed(length: number): Promise<Buffer> {
    await this.until(() => this.dataLength >= length)
    return this.data
  }

  pongs(): Buffer[] {
    return this.frames.filter((f) => f.opcode === 0xa).map((f) => f.payload)
  }

  /** The server's close frame once the connection ended: its code (undefined: none, or no code). */
  async closeCode(): Promise<number | undefined> {
    await this.closed
    const close = this.frames.find((f) => f.opcode === 0x8)
    return close !== undefined && close.payload.length >= 2
      ? close.payload.readUInt16BE(0)
      : undefined
  }

  close(code = 1000, reason = ''): void {
    const body = Buffer.alloc(2 + Buffer.byteLength(reason))
    body.writeUInt16BE(code, 0)
    body.write(reason, 2)
    this.send(this.frame(0x8, body))
  }

  #parse(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk])
    for (;;) {
      const b = this.#buffer
      if (b.length < 2) break
      let length = b[1]! & 0x7f
      let at = 2
      if (length === 126) {
        if (b.length < 4) break
        length = b.readUInt16BE(2)
        at = 4
      } else if (length === 127) {
        if (b.length < 10) break
        length = Number(b.readBigUInt64BE(2))
        at = 10
      }
      if (b.length < at + length) break
      const frame = { opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(at, at + length)) }
      if (frame.opcode <= 0x2) {
        this.#dataParts.push(frame.payload)
        this.dataLength += length
      } else this.frames.push(frame)
      this.#buffer = b.subarray(at + length)
    }
    this.#wake()
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake()
  }
}
