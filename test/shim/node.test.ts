import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { createDisposer } from '../helpers/disposer.js'
import { Digest } from '../helpers/data.js'
import { freePort, startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { startAccessTunnel } from '../helpers/access.js'
import { NodeWebSocket, RecordingWebSocket } from '../helpers/shim.js'
import { connectNet, createNetSocket, type TunnelNetSocket } from '../../web/node/index.js'

const d = createDisposer()
afterEach(() => d.run())

function track(socket: TunnelNetSocket): TunnelNetSocket {
  d.add(() => void socket.destroy())
  return socket
}

describe('gangway/node TunnelNetSocket', () => {
  it('behaves like a net.Socket for a driver: connect(port, host), connect event, data, end, close', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = track(
      createNetSocket({ url: server.url(), WebSocket: NodeWebSocket, address: '' }),
    )
    let connected = false
    socket.connect(echo.port, '127.0.0.1', () => (connected = true))
    expect(socket.connecting).toBe(true)
    expect(socket.readyState).toBe('opening')
    await once(socket, 'connect')
    expect(connected).toBe(true)
    expect(socket.remotePort).toBe(echo.port)
    expect(socket.readyState).toBe('open')
    const payload = randomBytes(4 * 1024 * 1024)
    const got = new Digest()
    socket.on('data', (chunk: Buffer) => got.update(chunk))
    socket.end(payload)
    await once(socket, 'close')
    const want = new Digest()
    want.update(payload)
    expect(got.hex()).toBe(want.hex())
    expect(socket.bytesRead).toBe(payload.length)
  })

  it('names the target from connect() as ?address=host:port when no address option is given', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    // A daemon that takes client-named targets (one with a fixed TARGET refuses them with 4403).
    const server = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`127.0.0.1:${echo.port}`] },
      memoryLogger(),
    )
    const urls: string[] = []
    class Spy extends RecordingWebSocket {
      constructor(url: string, protocols?: string[]) {
        super(url, protocols)
        urls.push(url)
      }
    }
    const socket = track(createNetSocket({ url: server.url, WebSocket: Spy }))
    socket.connect({ port: echo.port, host: '127.0.0.1' })
    await once(socket, 'connect')
    expect(new URL(urls[0]!).searchParams.get('address')).toBe(`127.0.0.1:${echo.port}`)
  })

  it('maps a refused target to ECONNREFUSED and keeps the tunnel code', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const socket = track(connectNet({ url: server.url(), WebSocket: NodeWebSocket }))
    const [err] = (await once(socket, 'error')) as [Error & Record<string, unknown>]
    expect([err.code, err.tunnelCode, err.closeCode]).toEqual([
      'ECONNREFUSED',
      'TARGET_REFUSED',
      4502,
    ])
  })

  it('maps a target reset to ECONNRESET and an idle tunnel to ETIMEDOUT', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = track(connectNet({ url: server.url(), WebSocket: NodeWebSocket }))
    await once(socket, 'connect')
    ;(await target.accepted(0)).resetAndDestroy()
    const [err] = (await once(socket, 'error')) as [Error & { code: string }]
    expect(err.code).toBe('ECONNRESET')

    const idle = await startTunnel(d, tcpTarget(target.port), { idleTimeoutMs: 50 })
    const quiet = track(connectNet({ url: idle.url(), WebSocket: NodeWebSocket }))
    const [idleErr] = (await once(quiet, 'error')) as [Error & { code: string }]
    expect(idleErr.code).toBe('ETIMEDOUT')
  })

  it('emits timeout after setTimeout(ms) without traffic, as net.Socket does', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = track(connectNet({ url: server.url(), WebSocket: NodeWebSocket }))
    await once(socket, 'connect')
    socket.setTimeout(20)
    await once(socket, 'timeout')
  })

  it('half-closes with allowHalfOpen: end() sends EOF and the answer still arrives', async () => {
    const target = await startTcpServer((s) => {
      s.allowHalfOpen = true
      let request = ''
      s.on('data', (c: Buffer) => (request += c.toString()))
      s.on('end', () => s.end(request.toUpperCase()))
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = track(
      connectNet({ url: server.url(), WebSocket: NodeWebSocket, allowHalfOpen: true }),
    )
    let answer = ''
    socket.on('data', (c: Buffer) => (answer += c.toString()))
    socket.end('shout')
    await once(socket, 'end')
    expect(answer).toBe('SHOUT')
  })

  it("has the rest of net.Socket's members, each doing what it says", async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = track(connectNet({ url: server.url(), WebSocket: NodeWebSocket }))
    await once(socket, 'connect')
    expect([socket.remoteFamily, socket.localFamily]).toEqual(['IPv4', 'IPv4'])
    expect(socket.autoSelectFamilyAttemptedAddresses).toEqual([])
    expect(socket.setTimeout(60_000).timeout).toBe(60_000)
    expect(socket.setTimeout(0).timeout).toBe(0)
    expect(socket.setTypeOfService(0x10).getTypeOfService()).toBe(0x10)
    socket.cork()
    socket.write(Buffer.alloc(1000))
    expect(socket.bufferSize).toBe(1000)
    socket.uncork()

    // destroySoon(): what was written arrives, then the target sees EOF and the socket closes, no error.
    const peer = await target.accepted(0)
    let received = 0
    peer.on('data', (c: Buffer) => (received += c.length))
    const errors: Error[] = []
    socket.on('error', (err: Error) => errors.push(err))
    socket.write(Buffer.alloc(1 << 20))
    socket.destroySoon()
    await once(socket, 'close')
    expect(errors).toEqual([])
    await once(peer, 'end')
    expect(received).toBe(1000 + (1 << 20))
  })

  it('resetAndDestroy() drops what waits, destroys without an error, and the target sees the end', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = track(connectNet({ url: server.url(), WebSocket: NodeWebSocket }))
    await once(socket, 'connect')
    const peer = await target.accepted(0)
    const errors: Error[] = []
    socket.on('error', (err: Error) => errors.push(err))
    expect(socket.resetAndDestroy()).toBe(socket)
    expect(socket.destroyed).toBe(true)
    await once(socket, 'close')
    await once(peer.resume(), 'end')
    expect(errors).toEqual([])
  })
})
