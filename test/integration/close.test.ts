import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { Digest } from '../helpers/data.js'
import { hashIncoming } from '../helpers/peers.js'
import { freePort, startBlackhole, startTcpServer } from '../helpers/tcp.js'
import {
  connectThroughTunnel,
  memoryLogger,
  startEchoTunnel,
  startTunnel,
  tcpTarget,
} from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { CloseCode } from '../../src/protocol.js'

const MiB = 1024 * 1024
const d = createDisposer()
afterEach(() => d.run())

function closeLine(logger: ReturnType<typeof memoryLogger>) {
  return logger.lines.find((l) => l.msg === 'tunnel closed')?.fields
}

describe('close semantics', () => {
  it('target EOF: pending bytes reach the client first, then close 1000', async () => {
    const payload = randomBytes(8 * MiB)
    const target = await startTcpServer((socket) => socket.end(payload))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const got = new Digest()
    const ws = await openWs(d, server.url(), {
      beforeOpen: (w) => void w.on('message', (m: Buffer) => got.update(m)),
    })
    ws.pause() // let the daemon queue data up before the EOF is seen
    const wsClosed = closed(ws)
    ws.resume()
    const { code, reason } = await wsClosed
    expect(code).toBe(CloseCode.NORMAL)
    expect(reason).toBe('target closed the connection')
    const want = new Digest()
    want.update(payload)
    expect(got.hex()).toBe(want.hex())
  })

  it('target reset: close 1011 with the reason, logged once with the error code', async () => {
    const { logger, server, ws, socket } = await connectThroughTunnel(d)
    const wsClosed = closed(ws)
    socket.resetAndDestroy()
    const { code, reason } = await wsClosed
    expect(code).toBe(CloseCode.INTERNAL_ERROR)
    expect(reason).toMatch(/ECONNRESET/)
    await server.close({ drainTimeoutMs: 0 })
    expect(logger.lines.filter((l) => l.msg === 'tunnel closed')).toHaveLength(1)
    expect(closeLine(logger)).toMatchObject({ code: 1011, by: 'target', error: 'ECONNRESET' })
  })

  it('client close: bytes still in flight are flushed to the target, then its TCP connection ends', async () => {
    const { logger, server, ws, socket } = await connectThroughTunnel(d, (socket) => socket.pause())
    // More than the kernel buffers hold, in messages under the 4 MiB limit: the daemon must flush them.
    const payload = randomBytes(16 * MiB)
    for (let offset = 0; offset < payload.length; offset += 2 * MiB) {
      ws.send(payload.subarray(offset, offset + 2 * MiB))
    }
    ws.close(1000, 'bye')
    const received = hashIncoming(socket)
    socket.resume()
    const got = await received
    const want = new Digest()
    want.update(payload)
    expect(got.bytes).toBe(payload.length)
    expect(got.hex()).toBe(want.hex())
    await server.close({ drainTimeoutMs: 1000 })
    expect(closeLine(logger)).toMatchObject({
      code: 1000,
      reason: 'bye',
      by: 'client',
      up: payload.length,
    })
  })

  it('client vanishes without a close frame: the target sees EOF and the tunnel is logged as 1006', async () => {
    const { logger, server, ws, socket } = await connectThroughTunnel(d)
    socket.resume()
    const ended = once(socket, 'end')
    ws.terminate()
    await ended
    await server.close({ drainTimeoutMs: 1000 })
    expect(closeLine(logger)).toMatchObject({ code: 1006, by: 'client' })
  })

  it('server shutdown closes live tunnels with 1001 after the drain timeout', async () => {
    const { server } = await startEchoTunnel(d)
    const ws = await openWs(d, server.url())
    const wsClosed = closed(ws)
    await server.close({ drainTimeoutMs: 50 })
    expect(await wsClosed).toEqual({ code: 1001, reason: 'server shutting down' })
  })
})

describe('dial before accept: a failed dial completes the upgrade and closes with a documented code', () => {
  it('nothing listens on the target port: 4502', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const result = await connectAndClose(server.url())
    expect(result).toEqual({ opened: true, code: 4502, reason: 'target refused the connection' })
  })

  it('DNS failure: 4503', async () => {
    const server = await startTunnel(d, tcpTarget(5900, 'no-such-host.invalid'))
    expect(await connectAndClose(server.url())).toMatchObject({
      code: 4503,
      reason: 'target unreachable',
    })
  })

  it('a unix socket that does not exist: 4503', async () => {
    const server = await startTunnel(d, { kind: 'unix', path: '/nonexistent/gangway-test.sock' })
    expect(await connectAndClose(server.url())).toMatchObject({ code: 4503 })
  })

  it('a target that never answers: 4504 after the connect timeout', async () => {
    const hole = await startBlackhole()
    d.add(() => hole.close())
    const server = await startTunnel(d, tcpTarget(hole.port), { connectTimeoutMs: 200 })
    expect(await connectAndClose(server.url())).toMatchObject({
      code: 4504,
      reason: 'target connect timed out',
    })
  })

  it('open means TCP connected: the target has accepted before the client sees open', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    await openWs(d, server.url())
    expect(target.sockets).toHaveLength(1)
  })

  it.each(['tcp', 'unix'] as const)(
    'a %s target that speaks first (a VNC banner before the client sent anything): the banner is the first message',
    async (kind) => {
      const banner = 'RFB 003.008\n'
      const target = net.createServer(function speaksFirst(socket) {
        socket.on('error', () => {})
        socket.write(banner)
        socket.pipe(socket)
      })
      const path = join(await tempDir(d), 'target.sock')
      target.listen(kind === 'unix' ? { path } : { port: 0, host: '127.0.0.1' })
      await once(target, 'listening')
      d.add(() => new Promise<void>((resolve) => target.close(() => resolve())))
      const server = await startTunnel(
        d,
        kind === 'unix'
          ? { kind: 'unix', path }
          : tcpTarget((target.address() as AddressInfo).port),
      )
      // Listen before 'open': the banner may arrive with the handshake's answer.
      const ws = new WebSocket(server.url(), { perMessageDeflate: false })
      d.add(() => ws.terminate())
      const messages: string[] = []
      const gotTwo = new Promise<void>((resolve) =>
        ws.on('message', (data: Buffer) => {
          messages.push(data.toString())
          if (messages.join('').length >= banner.length + 5) resolve()
        }),
      )
      await once(ws, 'open')
      ws.send(Buffer.from('hello'))
      await gotTwo
      expect(messages[0]).toBe(banner)
      expect(messages.join('')).toBe(`${banner}hello`)
    },
  )

  it.each([
    ['refused', 502, async () => tcpTarget(await freePort())],
    ['unreachable', 503, async () => tcpTarget(1, 'no-such-host.invalid')],
  ])(
    '--refuse-with http: %s is answered %i before the upgrade',
    async (_name, status, makeTarget) => {
      const server = await startTunnel(d, await makeTarget(), { refuseWith: 'http' })
      const ws = new WebSocket(server.url())
      ws.on('error', () => {})
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }]
      expect(res.statusCode).toBe(status)
      ws.terminate()
    },
  )

  it('--refuse-with http: a timeout is answered 504', async () => {
    const hole = await startBlackhole()
    d.add(() => hole.close())
    const server = await startTunnel(d, tcpTarget(hole.port), {
      connectTimeoutMs: 200,
      refuseWith: 'http',
    })
    const ws = new WebSocket(server.url())
    ws.on('error', () => {})
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }]
    expect(res.statusCode).toBe(504)
    ws.terminate()
  })

  it('a client that leaves while the target is being dialled aborts the dial', async () => {
    const hole = await startBlackhole()
    d.add(() => hole.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(hole.port), { connectTimeoutMs: 60_000 }, logger)
    const ws = new WebSocket(server.url())
    ws.on('error', () => {})
    await logger.waitFor('dialling')
    expect(server.stats().dialing).toBe(1)
    ws.terminate()
    await logger.waitFor('client left before the target answered')
    expect(server.stats().dialing).toBe(0)
  })
})
