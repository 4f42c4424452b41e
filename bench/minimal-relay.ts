/**
 * @module bench/minimal-relay
 * The bench's yardstick (issue #15): about the least a streaming WebSocket-to-TCP relay on Node does. The
 * upgrade is parsed by hand (only the key and a `binary` subprotocol are read), the target is dialled
 * before the 101, client frames are parsed as they arrive and their payload unmasked in place (bufferutil)
 * and written to the target slice by slice, each target read goes to the client as one binary frame, each
 * side pauses while the other's write queue holds more than 1 MiB, and the closing handshake is answered.
 * Node's own read buffers throughout (a fresh one per read). No validation, no limits, no timeouts, no
 * logs: not something to deploy, but what the machine gives any Node relay, so that Gangway's rows can be
 * read against it, the connection rate and the echo above all. It shares no code with src/ on purpose
 * (its frame header included): it stands for any relay, not for Gangway's parts.
 * Usage: node minimal-relay.js PORT TARGET_PORT
 */
import net, { type Socket } from 'node:net'
import { hash } from 'node:crypto'
import { createRequire } from 'node:module'

const port = Number(process.argv[2])
const targetPort = Number(process.argv[3])
/** Bytes queued towards one side before the other side is paused. */
const QUEUE_BYTES = 1024 * 1024
/** A request head longer than this is dropped. */
const MAX_HEAD_BYTES = 16 * 1024
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const KEY = /^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*$/im
const BINARY = /^sec-websocket-protocol:[^\r\n]*\bbinary\b/im

type Unmask = (data: Buffer, mask: Buffer) => void
const nativeUnmask = ((): Unmask | undefined => {
  try {
    return (createRequire(import.meta.url)('bufferutil') as { unmask: Unmask }).unmask
  } catch {
    return undefined
  }
})()

function unmask(data: Buffer, key: Buffer): void {
  if (nativeUnmask !== undefined) nativeUnmask(data, key)
  else for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ key[i & 3]!
}

/** A server frame's header (FIN set, no mask) for `length` payload bytes. */
function frameHeader(opcode: number, length: number): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, length])
  if (length < 0x10000) {
    const header = Buffer.allocUnsafe(4)
    header[0] = 0x80 | opcode
    header[1] = 126
    header.writeUInt16BE(length, 2)
    return header
  }
  const header = Buffer.allocUnsafe(10)
  header[0] = 0x80 | opcode
  header[1] = 127
  header.writeBigUInt64BE(BigInt(length), 2)
  return header
}

function sendFrame(socket: Socket, opcode: number, payload: Buffer): void {
  socket.cork()
  socket.write(frameHeader(opcode, payload.length))
  if (payload.length > 0) socket.write(payload)
  socket.uncork()
}

net
  .createServer({ noDelay: true }, function minimalOnConnection(client) {
    let head: Buffer = Buffer.alloc(0)
    client.on('error', () => client.destroy())
    client.on('data', function minimalOnHead(chunk: Buffer) {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) client.destroy()
        return
      }
      client.off('data', minimalOnHead)
      client.pause()
      const text = head.toString('latin1', 0, end + 2)
      const key = KEY.exec(text)?.[1]
      if (key === undefined) {
        client.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
        return
      }
      const protocol = BINARY.test(text) ? 'Sec-WebSocket-Protocol: binary\r\n' : ''
      const target = net.connect({ host: '127.0.0.1', port: targetPort, noDelay: true })
      target.on('error', () => {
        target.destroy()
        client.destroy()
      })
      client.on('close', () => target.destroy())
      target.once('connect', () => {
        client.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${hash('sha1', key + WS_GUID, 'base64')}\r\n${protocol}\r\n`,
        )
        relay(client, target, head.subarray(end + 4))
      })
    })
  })
  .listen({ host: '127.0.0.1', port, backlog: 4096 })

/** Relays between an upgraded client and its connected target; `early`: client bytes after the head. */
function relay(client: Socket, target: Socket, early: Buffer): void {
  /** Bytes of a frame header not complete yet. */
  let partial: Buffer | undefined
  let opcode = 0
  /** Payload bytes of the current frame still to come; -1 between frames. */
  let left = -1
  /** Payload offset of the next byte (its mask rotation). */
  let phase = 0
  const mask = Buffer.alloc(4)
  const key = Buffer.alloc(4)
  let control: Buffer[] = []
  let closing = false

  function clientOnData(chunk: Buffer): void {
    const data = partial === undefined ? chunk : Buffer.concat([partial, chunk])
    partial = undefined
    let at = 0
    while (at < data.length) {
      if (left < 0) {
        const read = readHeader(data, at)
        if (read === 0) {
          partial = data.subarray(at)
          break
        }
        at += read
        if (left === 0) frameDone()
        continue
      }
      const n = Math.min(left, data.length - at)
      const slice = data.subarray(at, at + n)
      for (let i = 0; i < 4; i++) key[i] = mask[(phase + i) & 3]!
      unmask(slice, key)
      at += n
      phase += n
      left -= n
      if (opcode < 8) {
        if (n > 0 && !closing) target.write(slice)
      } else control.push(slice)
      if (left === 0) frameDone()
    }
    if (target.writableLength > QUEUE_BYTES && !client.isPaused()) {
      client.pause()
      target.once('drain', () => client.resume())
    }
  }

  /** Parses a frame header at `data[at…]`; returns its length, or 0 when it is not all there. */
  function readHeader(data: Buffer, at: number): number {
    if (data.length - at < 2) return 0
    const short = data[at + 1]! & 0x7f
    const extra = short === 126 ? 2 : short === 127 ? 8 : 0
    const length = 2 + extra + 4
    if (data.length - at < length) return 0
    opcode = data[at]! & 0x0f
    left =
      short === 126
        ? data.readUInt16BE(at + 2)
        : short === 127
          ? Number(data.readBigUInt64BE(at + 2))
          : short
    data.copy(mask, 0, at + 2 + extra, at + length)
    phase = 0
    return length
  }

  function frameDone(): void {
    left = -1
    if (opcode < 8) return
    const payload = control.length === 1 ? control[0]! : Buffer.concat(control)
    control = []
    if (opcode === 0x9) sendFrame(client, 0xa, payload)
    if (opcode !== 0x8 || closing) return
    closing = true
    sendFrame(client, 0x8, payload.subarray(0, 2))
    client.end()
    target.end()
  }

  function targetOnData(chunk: Buffer): void {
    if (closing) return
    sendFrame(client, 0x2, chunk)
    if (client.writableLength > QUEUE_BYTES && !target.isPaused()) {
      target.pause()
      client.once('drain', () => target.resume())
    }
  }

  client.on('data', clientOnData)
  client.on('end', () => target.end())
  target.on('data', targetOnData)
  target.on('end', () => {
    if (!closing) {
      closing = true
      sendFrame(client, 0x8, Buffer.from([0x03, 0xe8]))
    }
    client.end()
  })
  target.on('close', () => client.end())
  if (early.length > 0) clientOnData(early)
  client.resume()
}
