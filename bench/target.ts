/**
 * @module bench/target
 * The TCP service behind every relay: sink, source, echo or idle, chosen by each connection's header
 * (see protocol.ts). Runs in its own process; opens a port per measurement when asked over IPC.
 */
import net, { type AddressInfo, type Socket } from 'node:net'
import { randomFillSync } from 'node:crypto'
import { CHUNK_BYTES, HEADER_BYTES, parseHeader } from './protocol.js'

const SOURCE_CHUNK = randomFillSync(Buffer.alloc(CHUNK_BYTES))
const ACK = Buffer.from([0x61])

// A fresh listening port for every measurement (asked for over IPC): connections that a previous
// measurement left in TIME_WAIT then never compete for the same address pairs (the connection-rate
// scenario alone leaves tens of thousands, more than the ephemeral port range).
const servers = new Map<number, net.Server>()
process.on('message', (message: { cmd: 'listen' } | { cmd: 'close'; port: number }) => {
  if (message.cmd === 'close') {
    servers.get(message.port)?.close()
    servers.delete(message.port)
    return
  }
  const server = net.createServer({ noDelay: true }, targetOnConnection)
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    const { port } = server.address() as AddressInfo
    servers.set(port, server)
    process.send?.({ type: 'listening', port })
  })
})
process.on('disconnect', () => process.exit(0))

function targetOnConnection(socket: Socket): void {
  let head: Buffer = Buffer.alloc(0)
  socket.on('error', () => socket.destroy())
  socket.on('data', socketOnHeader)

  function socketOnHeader(chunk: Buffer): void {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    if (head.length < HEADER_BYTES) return
    socket.off('data', socketOnHeader)
    const { mode, length } = parseHeader(head)
    const rest = head.subarray(HEADER_BYTES)
    if (mode === 'u') sink(socket, length, rest)
    else if (mode === 'd') source(socket, length)
    else if (mode === 'e') echo(socket, rest)
    else socket.resume() // idle: read (nothing arrives) and hold
  }
}

function sink(socket: Socket, length: number, first: Buffer): void {
  let received = first.length
  if (received >= length) socket.write(ACK)
  socket.on('data', function sinkOnData(chunk: Buffer) {
    const before = received
    received += chunk.length
    if (before < length && received >= length) socket.write(ACK)
  })
}

function source(socket: Socket, length: number): void {
  let left = length
  let stopped = false
  socket.on('close', () => (stopped = true))
  socket.resume() // keep reading so a client close is seen
  pump()
  function pump(): void {
    while (left > 0 && !stopped) {
      const chunk = left >= CHUNK_BYTES ? SOURCE_CHUNK : SOURCE_CHUNK.subarray(0, left)
      left -= chunk.length
      if (!socket.write(chunk)) {
        socket.once('drain', pump)
        return
      }
    }
  }
}

function echo(socket: Socket, first: Buffer): void {
  if (first.length > 0) socket.write(first)
  socket.on('data', function echoOnData(chunk: Buffer) {
    if (!socket.write(chunk)) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  })
}
