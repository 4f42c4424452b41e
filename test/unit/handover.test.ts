import { afterEach, describe, expect, it } from 'vitest'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { once } from 'node:events'
import { WebSocket, WebSocketServer } from 'ws'
import { relaySocketOf, streamingWebSocketClass } from '../../src/relay/handover.js'
import { StreamWebSocket } from '../../src/relay/stream-socket.js'
import { createDisposer } from '../helpers/disposer.js'

const d = createDisposer()
afterEach(() => d.run())

const OPTIONS = {
  maxTextBytes: 1024,
  maxTextFragments: 16,
  maxPendingPongs: 60,
  closeTimeoutMs: 1000,
}

/** A server whose upgrades go through ws with the streaming class; resolves each upgrade's relay socket. */
async function serve(perMessageDeflate: boolean) {
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate,
    WebSocket: streamingWebSocketClass(OPTIONS),
  })
  const upgraded: Array<ReturnType<typeof relaySocketOf>> = []
  const sockets: Duplex[] = []
  const server = http.createServer()
  server.on('upgrade', (req, socket, head) => {
    sockets.push(socket)
    wss.handleUpgrade(req, socket, head, (ws) => upgraded.push(relaySocketOf(ws)))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => new Promise((resolve) => server.close(resolve)))
  const { port } = server.address() as { port: number }
  return { url: `ws://127.0.0.1:${port}/`, upgraded, sockets }
}

describe('handover from ws (relies on WebSocket#setSocket, a ws internal: this test pins it)', () => {
  it('a plain upgrade is handed to the streaming codec, which echoes a message through it', async () => {
    const { url, upgraded } = await serve(false)
    const client = new WebSocket(url)
    d.add(() => client.terminate())
    await once(client, 'open')
    const server = upgraded[0] as unknown as StreamWebSocket
    expect(server).toBeInstanceOf(StreamWebSocket)
    server.on('message', (data: Buffer) => server.send(Buffer.from(data)))
    client.send(Buffer.from('ping me'))
    const [reply] = (await once(client, 'message')) as [Buffer]
    expect(reply.toString()).toBe('ping me')
    client.close(4000, 'bye')
    const [code, reason] = (await once(server, 'close')) as [number, Buffer]
    expect([code, reason.toString()]).toEqual([4000, 'bye'])
  })

  it("a clean closing handshake ends the socket once: the client's FIN does not end it again", async () => {
    const { url, upgraded, sockets } = await serve(false)
    const client = new WebSocket(url)
    d.add(() => client.terminate())
    await once(client, 'open')
    const socket = sockets[0]!
    let ends = 0
    const end = socket.end.bind(socket)
    socket.end = ((...args: Parameters<Duplex['end']>) => {
      ends++
      return end(...args)
    }) as Duplex['end']
    const serverClosed = once(upgraded[0] as unknown as StreamWebSocket, 'close')
    client.close(1000)
    await serverClosed
    expect(ends).toBe(1)
  })

  it('an upgrade that negotiated permessage-deflate stays on ws', async () => {
    const { url, upgraded } = await serve(true)
    const client = new WebSocket(url, { perMessageDeflate: true })
    d.add(() => client.terminate())
    await once(client, 'open')
    expect(upgraded[0]).toBeInstanceOf(WebSocket)
    expect(client.extensions).toMatch(/permessage-deflate/)
  })
})
