/**
 * gateway/accept-upgrade completes upgrades that negotiate no extension without `ws`. Differential: for
 * random keys and subprotocol offers, the daemon's 101 is byte for byte what a `ws` server with the same
 * subprotocol choice sends. And `ws` completes exactly the upgrades that may negotiate permessage-deflate.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import fc from 'fast-check'
import http from 'node:http'
import net from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import WebSocket, { WebSocketServer } from 'ws'
import { chooseSubprotocol } from '../../src/gateway/accept-upgrade.js'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { startEchoTunnel } from '../helpers/tunnel.js'
import { scale } from '../robust/scale.js'

const d = createDisposer()
afterEach(() => d.run())
afterEach(() => vi.restoreAllMocks())

/** A plain `ws` server choosing subprotocols as the daemon does: the oracle. */
async function startWsOracle(): Promise<number> {
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    handleProtocols: chooseSubprotocol,
  })
  const server = http.createServer()
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => ws.terminate())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

/** Sends `request` and resolves with the response head (up to and including the blank line). */
async function responseHead(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  d.add(() => void socket.destroy())
  await once(socket, 'connect')
  socket.write(request)
  let seen = ''
  while (!seen.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer]
    seen += chunk.toString('latin1')
  }
  socket.destroy()
  return seen.slice(0, seen.indexOf('\r\n\r\n') + 4)
}

const PROTOCOLS = ['binary', 'gangway.v1', 'chat', 'gangway.bearer.c2VjcmV0', 'v2.stomp'] as const

describe('accept-upgrade', () => {
  it('writes the 101 ws writes, for any key and any offered subprotocols', async () => {
    const { server } = await startEchoTunnel(d)
    const gangway = (server.address() as { port: number }).port
    const oracle = await startWsOracle()
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uniqueArray(fc.constantFrom(...PROTOCOLS), { maxLength: PROTOCOLS.length }),
        fc.constantFrom(',', ', ', ' ,\t'),
        async (nonce, offered, separator) => {
          const headers: Record<string, string> = {
            'Sec-WebSocket-Key': Buffer.from(nonce).toString('base64'),
          }
          if (offered.length > 0) headers['Sec-WebSocket-Protocol'] = offered.join(separator)
          const request = upgradeRequest(headers)
          const ours = await responseHead(gangway, request)
          expect(ours).toBe(await responseHead(oracle, request))
          expect(ours.startsWith('HTTP/1.1 101 ')).toBe(true)
        },
      ),
      { numRuns: scale(25, 300) },
    )
  })

  it('leaves to ws exactly the upgrades that may negotiate permessage-deflate', async () => {
    const handleUpgrade = vi.spyOn(WebSocketServer.prototype, 'handleUpgrade')
    for (const [compress, offer, viaWs] of [
      [false, true, 0],
      [true, false, 0],
      [true, true, 1],
    ] as const) {
      handleUpgrade.mockClear()
      const { server } = await startEchoTunnel(d, { compress })
      const port = (server.address() as { port: number }).port
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['binary'], { perMessageDeflate: offer })
      d.add(() => ws.terminate())
      await once(ws, 'open')
      expect({
        compress,
        offer,
        extensions: ws.extensions,
        viaWs: handleUpgrade.mock.calls.length,
      }).toEqual({
        compress,
        offer,
        extensions: compress && offer ? 'permessage-deflate' : '',
        viaWs,
      })
      // Relayed either way.
      const bytes = randomBytes(32)
      ws.send(bytes)
      const [echo] = (await once(ws, 'message')) as [Buffer]
      expect(echo.equals(bytes)).toBe(true)
    }
  })
})
