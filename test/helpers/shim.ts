/**
 * The shim in Node: `ws`'s WebSocket class injected (Node 20 has none built in), plus a subclass that
 * records what the shim does with it (the largest `bufferedAmount` after a send, bytes received), and a
 * bare ws server that closes every connection with a given code (for the error table).
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import { connect, type Address, type ConnectOptions } from '../../web/gangway.js'
import type { Disposer } from './disposer.js'

export class RecordingWebSocket extends WebSocket {
  static last: RecordingWebSocket | undefined
  maxBuffered = 0
  bytesReceived = 0
  bytesSent = 0
  private watchers: Array<() => void> = []
  constructor(url: string, protocols?: string[]) {
    super(url, protocols, { perMessageDeflate: false })
    RecordingWebSocket.last = this
    this.on('message', (data: ArrayBuffer, isBinary: boolean) => {
      if (isBinary) this.bytesReceived += data.byteLength
      this.notify()
    })
  }
  override send(data: string | Uint8Array): void {
    super.send(data)
    if (typeof data !== 'string') this.bytesSent += data.byteLength
    this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount)
    this.notify()
  }
  /** Resolves once `test()` holds, checked after every send and every message. */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => (test() ? resolve() : this.watchers.push(check))
      this.watchers.push(check)
    })
  }
  private notify(): void {
    for (const wake of this.watchers.splice(0)) wake()
  }
}

/** `ws`'s class, as the docs pass it: no cast needed. */
export const NodeWebSocket: ConnectOptions['WebSocket'] = RecordingWebSocket

/** `connect()` with ws injected, closed by the disposer. */
export function connectVia(
  d: Disposer,
  url: string,
  options: Partial<ConnectOptions> = {},
  address: Address = '',
) {
  const socket = connect(address, { url, WebSocket: NodeWebSocket, ...options })
  d.add(() => socket.close())
  return socket
}

/** A ws server that accepts every connection (optionally selecting a subprotocol) and runs `onSocket`. */
export async function startWsServer(
  d: Disposer,
  onSocket: (ws: WebSocket) => void,
  protocol: string | false = false,
): Promise<string> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => protocol })
  wss.on('connection', onSocket)
  await once(wss, 'listening')
  d.add(async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`
}

/** Reads a readable to its end; resolves with every chunk's bytes in order. */
export async function readAll(readable: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of readable as unknown as AsyncIterable<Uint8Array>) parts.push(chunk)
  return Buffer.concat(parts)
}
