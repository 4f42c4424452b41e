import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { closed } from '../helpers/ws.js'
import { connect, type TunnelError } from '../../web/gangway.js'

const d = createDisposer()
afterEach(() => d.run())
const TOKEN = 'byte-limited-token-0001'

async function limited(onSocket: Parameters<typeof startTcpServer>[0] = () => {}) {
  const target = await startTcpServer(onSocket)
  d.add(() => target.close())
  const routes = parseRoutes(
    { small: { target: `127.0.0.1:${target.port}`, tokens: [TOKEN], maxBytes: '1000' } },
    'routes',
  )
  const { url } = await startAccessTunnel(d, { routes }, memoryLogger())
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${TOKEN}` } })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  await once(ws, 'open')
  return { ws, target }
}

describe('per-route byte limit (maxBytes, also a JWT claim)', () => {
  it('closes with 4413 before relaying the message that would cross the limit', async () => {
    const { ws, target } = await limited()
    const socket = await target.accepted(0)
    let received = 0
    socket.on('data', (c: Buffer) => (received += c.length))
    const ended = once(socket, 'end')
    const wsClosed = closed(ws)
    ws.send(Buffer.alloc(600))
    ws.send(Buffer.alloc(600)) // 1200 > 1000
    expect(await wsClosed).toEqual({ code: 4413, reason: 'byte limit of 1000 reached' })
    await ended
    expect(received).toBe(600)
  })

  it('counts both directions together', async () => {
    const { ws } = await limited((socket) =>
      socket.on('data', () => socket.write(Buffer.alloc(700))),
    )
    const wsClosed = closed(ws)
    let down = 0
    ws.on('message', (m: Buffer) => (down += m.length))
    // Request/response rounds of 100 up + 700 down: the second answer would bring the total to 1600.
    let isClosed = false
    void wsClosed.then(() => (isClosed = true))
    for (let round = 0; round < 5 && !isClosed; round++) {
      ws.send(Buffer.alloc(100))
      await Promise.race([once(ws, 'message'), wsClosed])
    }
    expect((await wsClosed).code).toBe(4413)
    expect(down).toBeLessThanOrEqual(700)
  })

  it('gangway.v1: the chunk that crosses the limit is dropped and the target still gets every byte before it, then a clean end', async () => {
    const LIMIT = 3 * 1024 * 1024
    const target = await startTcpServer()
    d.add(() => target.close())
    const routes = parseRoutes(
      { small: { target: `127.0.0.1:${target.port}`, tokens: [TOKEN], maxBytes: String(LIMIT) } },
      'routes',
    )
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(d, { routes }, logger)
    const socket = connect('', { url, token: TOKEN, WebSocket: WebSocket })
    d.add(() => socket.close())
    await socket.opened
    const targetSocket = await target.accepted(0)
    targetSocket.pause() // bytes queue in the daemon's socket towards the target
    let received = 0
    const ended = new Promise<boolean>((resolve) => {
      targetSocket.on('end', () => resolve(true))
      targetSocket.on('close', () => resolve(false))
    })
    const writer = socket.writable.getWriter()
    // 4 MiB in 64 KiB writes: the limit (3 MiB) is crossed while earlier bytes still wait for the target.
    void (async () => {
      for (let i = 0; i < 64; i++) await writer.write(new Uint8Array(64 * 1024).fill(i))
    })().catch(() => undefined)
    const err = (await socket.closed.catch((e: unknown) => e)) as TunnelError
    expect(err.closeCode).toBe(4413)
    targetSocket.on('data', (c: Buffer) => (received += c.length))
    targetSocket.resume()
    expect(await ended).toBe(true) // a FIN, not a reset
    const line = await logger.waitFor('tunnel closed')
    expect(received).toBe(line.fields['up'])
    expect(received).toBeLessThanOrEqual(LIMIT)
  })
})
