/**
 * Real TCP peers on 127.0.0.1:0 for relay tests: an echo server, and a server that hands each accepted
 * socket to the test (to act as a sink, a pusher, a non-reader, or a resetter).
 */
import net, { type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import type { Disposer } from './disposer.js'

export interface TcpServer {
  port: number
  /** Sockets accepted so far, in order. */
  sockets: Socket[]
  /** Resolves with the next accepted socket (or the already accepted one at index `n`). */
  accepted(n?: number): Promise<Socket>
  close(): Promise<void>
}

export async function startTcpServer(onSocket: (s: Socket) => void = () => {}): Promise<TcpServer> {
  const list = acceptedList<Socket>()
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    list.add(socket, onSocket)
  })
  return { ...list, ...(await listenLoopback(server, '127.0.0.1', list.sockets)) }
}

/** The sockets a test server accepted, in order, and a way to wait for the `n`-th. */
export interface AcceptedList<S> {
  sockets: S[]
  /** Records `socket`, hands it to `onSocket`, then wakes whoever waits for it. */
  add(socket: S, onSocket: (socket: S) => void): void
  accepted(n?: number): Promise<S>
}

export function acceptedList<S>(): AcceptedList<S> {
  const sockets: S[] = []
  const waiters = new Map<number, (s: S) => void>()
  return {
    sockets,
    add(socket, onSocket) {
      sockets.push(socket)
      onSocket(socket)
      waiters.get(sockets.length - 1)?.(socket)
    },
    accepted(n = sockets.length) {
      const have = sockets[n]
      if (have) return Promise.resolve(have)
      return new Promise((resolve) => waiters.set(n, resolve))
    },
  }
}

/** Listens on `host`, port 0; `close` destroys `sockets` and closes the server. */
export async function listenLoopback(
  server: net.Server,
  host: string,
  sockets: Socket[],
): Promise<{ port: number; close(): Promise<void> }> {
  server.listen(0, host)
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Echoes every byte back, with backpressure (pipe). */
export function startEchoServer(): Promise<TcpServer> {
  return startTcpServer((socket) => socket.pipe(socket))
}

/** A port with nothing listening on it (bound, then closed). */
export async function freePort(): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

const BLACKHOLE_PY = `
import socket, signal
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
port = s.getsockname()[1]
fill = []
for i in range(2):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(('127.0.0.1', port))
    except BlockingIOError: pass
    fill.append(c)
print(port, flush=True)
signal.pause()
`

/**
 * A loopback port whose accept queue is full and never drained: SYNs to it are dropped, so a connect
 * hangs until the caller's timeout (the only way to get a connect timeout without leaving loopback).
 */
export async function startBlackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const { spawn } = await import('node:child_process')
  const child = spawn('python3', ['-c', BLACKHOLE_PY], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = (await once(child.stdout, 'data')) as [Buffer]
  return {
    port: Number(line.toString().trim()),
    async close() {
      if (child.exitCode !== null) return
      child.kill()
      await once(child, 'exit')
    },
  }
}

/**
 * A connected pair on loopback: `accepted` is the server's end, as the daemon gets it. Both ends are
 * destroyed by the disposer.
 */
export async function connectedPair(
  disposer: Disposer,
): Promise<{ client: Socket; accepted: Socket }> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [Socket]
  server.close()
  disposer.add(() => {
    client.destroy()
    accepted.destroy()
  })
  return { client, accepted }
}
