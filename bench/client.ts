/**
 * @module bench/client
 * The load client, in its own process: runs one scenario job sent by the orchestrator over IPC and answers
 * with its result. Speaks plain TCP (direct, socat) or WebSocket (the WebSocket relays), binary messages.
 */
import net from 'node:net'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { randomFillSync } from 'node:crypto'
import WebSocket from 'ws'
import { CHUNK_BYTES, header, type ChildMessage } from './protocol.js'

export type Proto = 'tcp' | 'ws'

export type Job =
  | {
      scenario: 'upload' | 'download'
      proto: Proto
      port: number
      bytes: number
      parallel: number
      /** WebSocket relays: `raw` (default) is connectRawWs; `ws` is the ws library (`--ws-client`). */
      wsClient?: 'raw' | 'ws'
    }
  | {
      /**
       * Every relay of a repetition at once, paired: the round trips run in slices, each slice on each
       * relay's connection in turn, so a slow minute of the machine falls on every relay alike.
       */
      scenario: 'latency'
      endpoints: Array<{
        proto: Proto
        port: number
        /** Connections (one echo each) opened and closed between the two measurements. */
        warmConnections: number
      }>
      roundTrips: number
      warmup: number
      /** Round trips per relay per turn. */
      slice: number
      /**
       * Round trips at the start of each turn that are not counted: the relay has just sat idle through
       * the others' turns, and its first echoes after that say how it wakes, not how it relays.
       */
      turnWarmup: number
    }
  | { scenario: 'connrate'; proto: Proto; port: number; durationMs: number; parallel: number }
  | { scenario: 'idle'; proto: Proto; port: number; count: number; warmUp: number }
  | { scenario: 'slow'; proto: Proto; port: number; bytes: number; count: number }

/** Bytes the client keeps queued on a connection before it waits (its own backpressure). */
const CLIENT_HWM_BYTES = 1024 * 1024
const PAYLOAD = randomFillSync(Buffer.alloc(CHUNK_BYTES))
const PING = PAYLOAD.subarray(0, 64)
const WARM_UP_BYTES = 16 * 1024 * 1024

interface Conn {
  /** Queues bytes; false when the caller should wait for `drained()`. */
  write(chunk: Buffer): boolean
  drained(): Promise<void>
  onData(listener: (chunk: Buffer) => void): void
  pause(): void
  /** Closes and resolves once the connection is gone. */
  close(): Promise<void>
  destroy(): void
}

async function connect(proto: Proto, port: number): Promise<Conn> {
  return proto === 'tcp' ? connectTcp(port) : connectWs(port)
}

async function connectTcp(port: number): Promise<Conn> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  return {
    write: (chunk) => socket.write(chunk),
    drained: () => once(socket, 'drain').then(() => undefined),
    onData: (listener) => void socket.on('data', listener),
    pause: () => void socket.pause(),
    async close() {
      if (socket.destroyed) return
      const closed = once(socket, 'close')
      socket.end()
      socket.resume()
      await closed
    },
    destroy: () => void socket.destroy(),
  }
}

async function connectWs(port: number): Promise<Conn> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { perMessageDeflate: false })
  ws.binaryType = 'nodebuffer'
  ws.on('error', () => {})
  await once(ws, 'open')
  let wake: (() => void) | undefined
  function wsOnSent(): void {
    if (wake && ws.bufferedAmount < CLIENT_HWM_BYTES / 2) {
      const w = wake
      wake = undefined
      w()
    }
  }
  return {
    write(chunk) {
      ws.send(chunk, { binary: true }, wsOnSent)
      return ws.bufferedAmount < CLIENT_HWM_BYTES
    },
    drained: () => new Promise<void>((resolve) => (wake = resolve)),
    onData: (listener) => void ws.on('message', listener),
    pause: () => ws.pause(),
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return
      const closed = once(ws, 'close')
      ws.close(1000)
      await closed
    },
    destroy: () => ws.terminate(),
  }
}

/** Resolves when `count` more bytes have arrived on `conn`. */
function counter(conn: Conn): (count: number) => Promise<void> {
  let received = 0
  let goal = 0
  let wake: (() => void) | undefined
  conn.onData((chunk) => {
    received += chunk.length
    if (wake && received >= goal) {
      const w = wake
      wake = undefined
      w()
    }
  })
  return (count) => {
    goal += count
    if (received >= goal) return Promise.resolve()
    return new Promise<void>((resolve) => (wake = resolve))
  }
}

async function upload(conn: Conn, bytes: number): Promise<void> {
  const ack = counter(conn)
  conn.write(header('u', bytes))
  for (let sent = 0; sent < bytes; sent += CHUNK_BYTES) {
    if (!conn.write(PAYLOAD)) await conn.drained()
  }
  await ack(1)
}

async function download(conn: Conn, bytes: number): Promise<void> {
  const got = counter(conn)
  conn.write(header('d', bytes))
  await got(bytes)
}

async function throughput(job: Extract<Job, { scenario: 'upload' | 'download' }>) {
  const perConn = Math.floor(job.bytes / job.parallel / CHUNK_BYTES) * CHUNK_BYTES
  const open = (): Promise<Conn> =>
    job.proto === 'ws' && job.wsClient !== 'ws'
      ? connectRawWs(job.port)
      : connect(job.proto, job.port)
  const conns = await Promise.all(Array.from({ length: job.parallel }, open))
  const start = performance.now()
  await Promise.all(
    conns.map((c) => (job.scenario === 'upload' ? upload(c, perConn) : download(c, perConn))),
  )
  const seconds = (performance.now() - start) / 1000
  await Promise.all(conns.map((c) => c.close()))
  return { bytes: perConn * job.parallel, seconds }
}

/**
 * Echo round trips on one connection, measured twice: first on the relay as it started (a fresh process),
 * then on a new connection after `warmConnections` others have come and gone, as on a daemon that has
 * been serving. A fresh Node process compiles and deoptimises its hot paths during the first measurement
 * (see docs/benchmark.md); a process-per-connection relay is fresh every time.
 */
type LatencyJob = Extract<Job, { scenario: 'latency' }>

/** Per endpoint: p50/p99/p99.9 on the relay as started, then again once it is warm (see `Job`). */
async function latency(job: LatencyJob) {
  const cold = await pairedRoundTrips(job)
  const opening = Buffer.concat([header('e'), PING])
  for (const endpoint of job.endpoints) {
    let left = endpoint.warmConnections
    const worker = async (): Promise<void> => {
      for (; left > 0; left--) await oneEcho(endpoint.proto, endpoint.port, opening)
    }
    await Promise.all(Array.from({ length: 8 }, worker))
  }
  const warm = await pairedRoundTrips(job)
  return job.endpoints.map((endpoint, i) => ({
    ...cold[i]!,
    warmP50Us: warm[i]!.p50Us,
    warmP99Us: warm[i]!.p99Us,
    warmP999Us: warm[i]!.p999Us,
    roundTrips: job.roundTrips,
    warmConnections: endpoint.warmConnections,
  }))
}

/** One connection per endpoint; `roundTrips` on each, a slice at a time, the endpoints' order rotating. */
async function pairedRoundTrips(job: LatencyJob) {
  const conns: Conn[] = []
  for (const { proto, port } of job.endpoints) {
    conns.push(proto === 'tcp' ? await connectTcp(port) : await connectRawWs(port))
  }
  const counters = conns.map((conn) => counter(conn))
  const samples = conns.map(() => new Float64Array(job.roundTrips))
  for (const [i, conn] of conns.entries()) {
    conn.write(header('e'))
    for (let k = 0; k < job.warmup; k++) {
      conn.write(PING)
      await counters[i]!(PING.length)
    }
  }
  const n = conns.length
  for (let done = 0, turn = 0; done < job.roundTrips; done += job.slice, turn++) {
    const count = Math.min(job.slice, job.roundTrips - done)
    for (let k = 0; k < n; k++) {
      const i = (k + turn) % n
      const conn = conns[i]!
      const got = counters[i]!
      const into = samples[i]!
      for (let w = 0; w < job.turnWarmup; w++) {
        conn.write(PING)
        await got(PING.length)
      }
      for (let r = 0; r < count; r++) {
        const start = performance.now()
        conn.write(PING)
        await got(PING.length)
        into[done + r] = (performance.now() - start) * 1000
      }
    }
  }
  for (const conn of conns) await conn.close()
  return samples.map((values) => {
    values.sort()
    const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))]!
    return { p50Us: at(0.5), p99Us: at(0.99), p999Us: at(0.999) }
  })
}

/** One short connection: open, one 64-byte echo, close (the connection-rate scenario's unit). */
async function oneEcho(proto: Proto, port: number, opening: Buffer): Promise<void> {
  if (proto === 'ws') return rawWsEcho(port, opening)
  const conn = await connect(proto, port)
  const got = counter(conn)
  conn.write(opening)
  await got(PING.length)
  await conn.close()
}

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d])

/** A client-to-server frame (FIN, binary or close), masked with MASK. */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length
  const lengthBytes = n < 126 ? 0 : n < 0x10000 ? 2 : 8
  const start = 2 + lengthBytes + 4
  const frame = Buffer.alloc(start + n)
  frame[0] = 0x80 | opcode
  frame[1] = 0x80 | (n < 126 ? n : n < 0x10000 ? 126 : 127)
  if (lengthBytes === 2) frame.writeUInt16BE(n, 2)
  else if (lengthBytes === 8) frame.writeBigUInt64BE(BigInt(n), 2)
  MASK.copy(frame, 2 + lengthBytes)
  for (let i = 0; i < n; i++) frame[start + i] = payload[i]! ^ MASK[i & 3]!
  return frame
}

/**
 * The bulk payload's frame, masked once: the raw client writes the same frame for every 64 KiB message,
 * as the TCP client writes the same buffer. The relay still parses and unmasks every one.
 */
const PAYLOAD_FRAME = maskedFrame(0x2, PAYLOAD)

function upgradeRequest(port: number): string {
  return (
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
    `Sec-WebSocket-Protocol: binary\r\n\r\n`
  )
}

/**
 * For the echo latency and the throughput rows: a minimal WebSocket client on a raw socket (a fixed
 * handshake; every write one masked binary frame, the 64 KiB payload's masked once; the server's frames
 * parsed only for their payload), so that what the client adds is what the plain TCP client adds, and the
 * relays are compared on their own cost. With `ws` as the client, every WebSocket relay measured 30-60 µs
 * slower per round trip than it is, and `ws`'s copy and mask of every 64 KiB message (its memory, its
 * collections) ran on the cores the relay was measured on.
 */
async function connectRawWs(port: number): Promise<Conn> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(upgradeRequest(port))
  let head: Buffer = Buffer.alloc(0)
  while (head.indexOf('\r\n\r\n') < 0) {
    const [chunk] = (await once(socket, 'data')) as [Buffer]
    head = Buffer.concat([head, chunk])
  }
  if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) throw new Error('no 101')
  const listeners: Array<(chunk: Buffer) => void> = []
  let pending: Buffer = head.subarray(head.indexOf('\r\n\r\n') + 4)
  /** Payload bytes still to come in the current server frame. */
  let payloadLeft = 0
  function rawWsOnData(chunk: Buffer): void {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length > 0) {
      if (payloadLeft > 0) {
        const n = Math.min(payloadLeft, pending.length)
        const payload = pending.subarray(0, n)
        for (const listener of listeners) listener(payload)
        payloadLeft -= n
        pending = pending.subarray(n)
        continue
      }
      if (pending.length < 2) return
      const short = pending[1]! & 0x7f
      const headerLength = short === 126 ? 4 : short === 127 ? 10 : 2
      if (pending.length < headerLength) return
      payloadLeft =
        short === 126
          ? pending.readUInt16BE(2)
          : short === 127
            ? Number(pending.readBigUInt64BE(2))
            : short
      pending = pending.subarray(headerLength)
    }
  }
  socket.on('data', rawWsOnData)
  return {
    write: (chunk) => socket.write(chunk === PAYLOAD ? PAYLOAD_FRAME : maskedFrame(0x2, chunk)),
    drained: () => once(socket, 'drain').then(() => undefined),
    onData: (listener) => {
      listeners.push(listener)
      if (pending.length > 0) rawWsOnData(Buffer.alloc(0))
    },
    pause: () => void socket.pause(),
    async close() {
      if (socket.destroyed) return
      const closed = once(socket, 'close')
      socket.write(maskedFrame(0x8, Buffer.from([0x03, 0xe8])))
      socket.end()
      socket.resume()
      await closed
    },
    destroy: () => void socket.destroy(),
  }
}

/**
 * For the connection rate only: a minimal WebSocket client on a raw socket (a fixed handshake, one
 * pre-masked frame, the close handshake), so the client's own cost is close to the plain TCP client's and
 * the relay's cost is what the rate shows. The response is not validated beyond its length.
 */
async function rawWsEcho(port: number, opening: Buffer): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
  socket.on('error', () => {})
  const closed = once(socket, 'close')
  socket.write(upgradeRequest(port))
  await new Promise<void>((resolve, reject) => {
    let seen = Buffer.alloc(0)
    let headEnd = -1
    socket.on('close', () => reject(new Error('closed before the echo')))
    socket.on('data', function rawOnData(chunk: Buffer) {
      seen = Buffer.concat([seen, chunk])
      if (headEnd < 0) {
        headEnd = seen.indexOf('\r\n\r\n')
        // Like a browser, send only once the 101 is in (websockify drops bytes that come with the request).
        if (headEnd >= 0) socket.write(maskedFrame(0x2, opening))
      }
      if (headEnd >= 0 && seen.length - headEnd - 4 >= PING.length + 2) {
        socket.off('data', rawOnData)
        resolve()
      }
    })
  })
  socket.write(maskedFrame(0x8, Buffer.from([0x03, 0xe8])))
  // The server's close frame (or its FIN) ends it; some servers wait for the client to close the TCP.
  await new Promise((resolve) => {
    socket.once('data', resolve)
    socket.once('close', resolve)
  })
  socket.destroy()
  await closed
}

async function connrate(job: Extract<Job, { scenario: 'connrate' }>) {
  const opening = Buffer.concat([header('e'), PING])
  const start = performance.now()
  const deadline = start + job.durationMs
  let done = 0
  async function worker(): Promise<void> {
    while (performance.now() < deadline) {
      await oneEcho(job.proto, job.port, opening)
      done++
    }
  }
  await Promise.all(Array.from({ length: job.parallel }, worker))
  const seconds = (performance.now() - start) / 1000
  return { connections: done, seconds, perSecond: done / seconds }
}

/** Opens `count` tunnels (200 at a time), reports, holds them until told to close. */
async function idle(job: Extract<Job, { scenario: 'idle' }>) {
  // Open and close `warmUp` tunnels first: the relay's heap grows once to its working size, and the
  // orchestrator measures the marginal cost of a tunnel from there (and the cold cost from start-up).
  for (let i = 0; i < job.warmUp; i += 100) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(100, job.warmUp - i) }, () => connect(job.proto, job.port)),
    )
    await Promise.all(batch.map((c) => c.close()))
  }
  await phase('warm', job.warmUp)
  const conns: Conn[] = []
  const start = performance.now()
  let refused = 0
  for (let i = 0; i < job.count; i += 200) {
    const batch = Math.min(200, job.count - i)
    const opened = await Promise.allSettled(
      Array.from({ length: batch }, () => connect(job.proto, job.port)),
    )
    for (const o of opened) {
      if (o.status === 'fulfilled') {
        o.value.write(header('i'))
        conns.push(o.value)
      } else refused++
    }
    if (refused > 0) break
  }
  const openSeconds = (performance.now() - start) / 1000
  await phase('opened', conns.length)
  for (const c of conns) c.destroy()
  return { opened: conns.length, refused, openSeconds }
}

/** `count` tunnels whose clients stop reading while the target pushes `bytes` into each. */
async function slow(job: Extract<Job, { scenario: 'slow' }>) {
  // Warm up first, as a daemon that has been moving data is: the heap's first growth is not per tunnel.
  const warm = await connect(job.proto, job.port)
  await download(warm, WARM_UP_BYTES)
  await warm.close()
  const conns = await Promise.all(
    Array.from({ length: job.count }, () => connect(job.proto, job.port)),
  )
  await phase('opened', job.count) // the tunnels are up and nothing flows: the idle level
  for (const conn of conns) {
    conn.pause()
    conn.write(header('d', job.bytes))
  }
  await phase('pushing', job.count)
  for (const conn of conns) conn.destroy()
  return {}
}

let resume: (() => void) | undefined
/** Tells the orchestrator where we are and waits for its go-ahead (it measures the relay meanwhile). */
function phase(name: string, count: number): Promise<void> {
  send({ type: 'phase', phase: name, count })
  return new Promise((resolve) => (resume = resolve))
}

function send(message: ChildMessage): void {
  process.send?.(message)
}

const SCENARIOS = { upload: throughput, download: throughput, latency, connrate, idle, slow }

process.on('message', (message: Job | { cmd: 'continue' }) => {
  if ('cmd' in message) {
    resume?.()
    return
  }
  const run = SCENARIOS[message.scenario] as (
    job: Job,
  ) => Promise<Record<string, number> | Array<Record<string, number>>>
  run(message).then(
    (result) =>
      send(
        Array.isArray(result) ? { type: 'results', results: result } : { type: 'result', result },
      ),
    (err: unknown) => send({ type: 'error', message: String(err) }),
  )
})
process.on('disconnect', () => process.exit(0))
