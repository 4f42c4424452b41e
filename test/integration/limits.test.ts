import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { clientFrame, rawFrames, rawRequest, upgradeRequest } from '../helpers/raw-http.js'
import { startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

async function countingTunnel(overrides = {}) {
  const target = await startTcpServer((s) => s.pipe(s))
  d.add(() => target.close())
  const logger = memoryLogger()
  const server = await startTunnel(d, tcpTarget(target.port), overrides, logger)
  const port = (server.address() as { port: number }).port
  return { target, server, port, logger }
}

describe('handshake limits', () => {
  it('a request head that never completes is answered 408 after --handshake-timeout', async () => {
    const { port, target } = await countingTunnel({ handshakeTimeoutMs: 300 })
    const response = await rawRequest(
      port,
      'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n',
    )
    expect(response).toMatch(/^HTTP\/1\.1 408 /)
    expect(target.sockets).toHaveLength(0)
  })

  it('an oversized request head is answered 431 and never dials', async () => {
    const { port, target } = await countingTunnel({ maxHeaderBytes: 4096 })
    const response = await rawRequest(port, upgradeRequest({ 'X-Padding': 'x'.repeat(8192) }))
    expect(response).toMatch(/^HTTP\/1\.1 431 /)
    expect(target.sockets).toHaveLength(0)
  })

  it.each([
    ['an unsupported version', { 'Sec-WebSocket-Version': '8' }, 426],
    ['a missing key', { 'Sec-WebSocket-Key': '' }, 400],
    ['a malformed key', { 'Sec-WebSocket-Key': 'not-base64' }, 400],
    ['a wrong Upgrade header', { Upgrade: 'h2c' }, 400],
  ])(
    'a handshake with %s is refused (%i) before anything is dialled',
    async (_what, headers, status) => {
      const { port, target } = await countingTunnel()
      const response = await rawRequest(port, upgradeRequest(headers))
      expect(response.startsWith(`HTTP/1.1 ${status} `)).toBe(true)
      if (status === 426) expect(response).toMatch(/Sec-WebSocket-Version: 13/)
      expect(target.sockets).toHaveLength(0)
    },
  )

  it('garbage instead of HTTP is answered 400 and the server keeps serving', async () => {
    const { port, server } = await countingTunnel()
    const response = await rawRequest(
      port,
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]),
    )
    expect(response).toMatch(/^HTTP\/1\.1 400 /)
    const ws = await openWs(d, server.url())
    expect(ws.readyState).toBe(WebSocket.OPEN)
  })
})

describe('--max-connections', () => {
  it('refuses the tunnel beyond the limit with 4429, and accepts again once one closes', async () => {
    const { server, logger } = await countingTunnel({ maxConnections: 2 })
    const first = await openWs(d, server.url())
    await openWs(d, server.url())
    expect(await connectAndClose(server.url())).toEqual({
      opened: true,
      code: 4429,
      reason: 'too many connections',
    })
    first.close()
    await logger.waitFor('tunnel closed') // both sockets of the first tunnel are closed: its slot is free
    const again = await openWs(d, server.url())
    expect(again.readyState).toBe(WebSocket.OPEN)
  })

  it('with --refuse-with http, beyond the limit is answered 503', async () => {
    const { server } = await countingTunnel({ maxConnections: 1, refuseWith: 'http' })
    await openWs(d, server.url())
    const ws = new WebSocket(server.url())
    ws.on('error', () => {})
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }]
    expect(res.statusCode).toBe(503)
    ws.terminate()
  })
})

describe('messages', () => {
  it('a text message above --max-message-size closes with 1009, and the target sees EOF', async () => {
    const { server, target } = await countingTunnel({ maxMessageBytes: 64 * 1024 })
    const ws = await openWs(d, server.url())
    const targetSocket = await target.accepted(0)
    const ended = once(targetSocket, 'end')
    const wsClosed = closed(ws)
    ws.send('x'.repeat(64 * 1024 + 1))
    expect((await wsClosed).code).toBe(1009)
    await ended
  })

  it('a text message of exactly --max-message-size passes', async () => {
    const { server } = await countingTunnel({ maxMessageBytes: 64 * 1024 })
    const ws = await openWs(d, server.url())
    ws.send('x'.repeat(64 * 1024))
    let got = 0
    while (got < 64 * 1024) {
      const [m] = (await once(ws, 'message')) as [Buffer]
      got += m.length
    }
    expect(got).toBe(64 * 1024)
  })

  it('binary messages have no size limit: one of 16 × --max-message-size arrives whole', async () => {
    const { server } = await countingTunnel({ maxMessageBytes: 64 * 1024 })
    const ws = await openWs(d, server.url())
    const sent = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 11)) & 0xff
    const got: Buffer[] = []
    let length = 0
    const echoed = new Promise<void>((resolve, reject) => {
      ws.on('message', (m: Buffer) => {
        got.push(m)
        length += m.length
        if (length >= sent.length) resolve()
      })
      ws.on('close', (code) => reject(new Error(`closed ${code} after ${length} bytes`)))
    })
    ws.send(sent)
    await echoed
    expect(Buffer.concat(got).equals(sent)).toBe(true)
  })

  it('with --compress the limit applies to the inflated size: a small deflate bomb closes with 1009', async () => {
    const { server } = await countingTunnel({ maxMessageBytes: 1024 * 1024, compress: true })
    const ws = await openWs(d, server.url(), { perMessageDeflate: true })
    expect(ws.extensions).toMatch(/permessage-deflate/)
    const wsClosed = closed(ws)
    ws.send(Buffer.alloc(8 * 1024 * 1024), { compress: true }) // ~8 KiB on the wire, 8 MiB inflated
    expect((await wsClosed).code).toBe(1009)
  })

  it('per-message deflate is off by default even when the client offers it', async () => {
    const { server } = await countingTunnel()
    const ws = await openWs(d, server.url(), { perMessageDeflate: true })
    expect(ws.extensions).toBe('')
  })

  it('text messages are forwarded as their UTF-8 bytes by default', async () => {
    const { server } = await countingTunnel()
    const ws = await openWs(d, server.url())
    ws.send('héllo ✓')
    const [m, isBinary] = (await once(ws, 'message')) as [Buffer, boolean]
    expect(isBinary).toBe(true)
    expect(m.equals(Buffer.from('héllo ✓', 'utf8'))).toBe(true)
  })

  it('--text reject closes with 1003 on a text message, before forwarding it', async () => {
    const { server, target } = await countingTunnel({ textPolicy: 'reject' })
    const ws = await openWs(d, server.url())
    const targetSocket = await target.accepted(0)
    let forwarded = 0
    targetSocket.on('data', (c: Buffer) => (forwarded += c.length))
    const ended = once(targetSocket, 'end')
    const wsClosed = closed(ws)
    ws.send('not allowed')
    expect(await wsClosed).toEqual({ code: 1003, reason: 'text messages are not accepted' })
    await ended
    expect(forwarded).toBe(0)
  })
})

describe('protocol violations close with the RFC 6455 code, and the target sees EOF', () => {
  it.each([
    ['an unmasked client frame', Buffer.from([0x82, 0x03, 0x61, 0x62, 0x63]), 1002],
    ['an unknown opcode', clientFrame(0x3, Buffer.from('x')), 1002],
    ['invalid UTF-8 in a text message', clientFrame(0x1, Buffer.from([0xff, 0xfe, 0xfd])), 1007],
    ['a fragmented control frame', clientFrame(0x9, Buffer.from('ping'), false), 1002],
    ['a close frame with an invalid code', clientFrame(0x8, Buffer.from([0x03, 0xe7])), 1002],
  ])('%s: %i', async (_what, frames, code) => {
    const { port, target } = await countingTunnel()
    const got = rawFrames(port, frames)
    const targetSocket = await target.accepted(0)
    const ended = once(targetSocket, 'end')
    expect(await got).toBe(code)
    await ended
  })
})

describe('subprotocols', () => {
  it.each([
    [['binary'], 'binary'],
    [['foo', 'binary'], 'binary'],
    [['base64', 'binary'], 'binary'],
    [[], ''],
  ])('offered %j: selects %j and never refuses', async (offered, selected) => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const ws = await openWs(d, server.url(), { protocols: offered })
    expect(ws.protocol).toBe(selected)
  })

  it('an offer without "binary" is accepted with no subprotocol selected (as browsers accept)', async () => {
    const { port } = await countingTunnel()
    const response = await rawRequest(
      port,
      upgradeRequest({
        'Sec-WebSocket-Protocol': 'foo, bar',
        Connection: 'Upgrade, close',
      }).replace(
        '\r\n\r\n',
        '\r\n\r\n' + '\x88\x80\x00\x00\x00\x00', // then a masked close frame, so the server ends it
      ),
    )
    expect(response).toMatch(/^HTTP\/1\.1 101 /)
    expect(response.toLowerCase()).not.toContain('sec-websocket-protocol')
  })

  it.each([
    ['a malformed Sec-WebSocket-Protocol header', { 'Sec-WebSocket-Protocol': 'a,,b' }, {}],
    ['a duplicated subprotocol', { 'Sec-WebSocket-Protocol': 'binary, binary' }, {}],
    [
      'an unacceptable permessage-deflate offer (with --compress)',
      { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits=99' },
      { compress: true },
    ],
  ])('%s is refused with 400 before anything is dialled', async (_what, headers, options) => {
    const { port, target } = await countingTunnel(options)
    const response = await rawRequest(port, upgradeRequest(headers))
    expect(response).toMatch(/^HTTP\/1\.1 400 /)
    expect(target.sockets).toHaveLength(0)
  })
})

describe('connections over IPv6 loopback', () => {
  it('listens on [::1] and dials an IPv6 target', async () => {
    const echo = net.createServer((s) => s.pipe(s))
    echo.listen(0, '::1')
    await once(echo, 'listening')
    d.add(() => new Promise((r) => echo.close(r)))
    const port = (echo.address() as net.AddressInfo).port
    const server = await startTunnel(d, tcpTarget(port, '::1'), {
      listen: { kind: 'tcp', host: '::1', port: 0 },
    })
    expect(server.url()).toMatch(/^ws:\/\/\[::1\]:\d+\/$/)
    const ws = await openWs(d, server.url())
    ws.send(Buffer.from('v6'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('v6')
  })
})
