import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import WebSocket, { type ClientOptions } from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed } from '../helpers/ws.js'
import { encodeProxyHeader, parseProxyHeader } from '../../src/gateway/proxy-protocol.js'

const d = createDisposer()
afterEach(() => d.run())

/** Opens a WebSocket whose TCP connection first sends `preamble` (a PROXY header from a "balancer"). */
async function openVia(
  url: string,
  preamble: Buffer,
  headers: Record<string, string> = {},
): Promise<WebSocket> {
  const options: ClientOptions = {
    headers,
    createConnection: (connectOptions) => {
      const socket = net.connect(connectOptions as net.NetConnectOpts)
      socket.write(preamble)
      return socket
    },
  }
  const ws = new WebSocket(url, options)
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  await once(ws, 'open')
  return ws
}

async function openedClient(logger: ReturnType<typeof memoryLogger>): Promise<unknown> {
  return (await logger.waitFor('tunnel open')).fields['client']
}

describe('PROXY protocol on the listener (--proxy-protocol)', () => {
  it.each([1, 2] as const)('v%i: the header names the client in the logs', async (version) => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(echo.port), { proxyProtocol: true }, logger)
    const header = encodeProxyHeader(version, {
      sourceAddress: '203.0.113.7',
      sourcePort: 4242,
      destinationAddress: '198.51.100.1',
      destinationPort: 443,
    })
    const ws = await openVia(server.url(), header)
    expect(await openedClient(logger)).toBe('203.0.113.7:4242')
    ws.send(Buffer.from('through the balancer'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('through the balancer')
  })

  it('drops a connection that does not start with a PROXY header, and keeps serving', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(echo.port), { proxyProtocol: true }, logger)
    const ws = new WebSocket(server.url())
    ws.on('error', () => {}) // "socket hang up": the daemon drops it without an answer
    await new Promise((resolve) => ws.once('close', resolve))
    expect(
      (await logger.waitFor('connection dropped: no valid PROXY header')).fields['error'],
    ).toBe('no PROXY protocol header')
    expect(echo.sockets).toHaveLength(0)
    await openVia(server.url(), Buffer.from('PROXY UNKNOWN\r\n'))
  })
})

describe('forwarding headers (--trust-proxy)', () => {
  it('believes X-Forwarded-For from a trusted proxy, walking past trusted hops', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(
      d,
      tcpTarget(echo.port),
      { trustProxy: '127.0.0.1, 10.0.0.0/8' },
      logger,
    )
    const ws = new WebSocket(server.url(), {
      headers: { 'X-Forwarded-For': '198.51.100.20, 10.1.1.1' },
    })
    d.add(() => ws.terminate())
    await once(ws, 'open')
    expect(await openedClient(logger)).toBe('198.51.100.20')
  })

  it('believes Forwarded (RFC 7239) only with --trust-proxy-header Forwarded', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(
      d,
      tcpTarget(echo.port),
      { trustProxy: '127.0.0.1', trustProxyHeader: 'Forwarded' },
      logger,
    )
    const ws = new WebSocket(server.url(), {
      headers: {
        Forwarded: 'for="[2001:db8::5]:4711";proto=https',
        'X-Forwarded-For': '198.51.100.20',
      },
    })
    d.add(() => ws.terminate())
    await once(ws, 'open')
    expect(await openedClient(logger)).toBe('[2001:db8::5]')
  })

  it('ignores forwarding headers from anyone else', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(echo.port), { trustProxy: '10.0.0.0/8' }, logger)
    const ws = new WebSocket(server.url(), { headers: { 'X-Forwarded-For': '6.6.6.6' } })
    d.add(() => ws.terminate())
    await once(ws, 'open')
    expect(await openedClient(logger)).toMatch(/^127\.0\.0\.1:\d+$/)
  })
})

describe('PROXY protocol towards the target (--target-proxy-protocol)', () => {
  it.each(['v1', 'v2'] as const)(
    '%s: the target reads the client address before any relayed byte',
    async (mode) => {
      const target = await startTcpServer()
      d.add(() => target.close())
      const server = await startTunnel(d, tcpTarget(target.port), {
        targetProxyProtocol: mode,
        trustProxy: '127.0.0.1',
      })
      const ws = new WebSocket(server.url(), { headers: { 'X-Forwarded-For': '192.0.2.99' } })
      d.add(() => ws.terminate())
      ws.on('error', () => {})
      await once(ws, 'open')
      const socket = await target.accepted(0)
      ws.send(Buffer.from('payload'))
      let buf = Buffer.alloc(0)
      while (!buf.includes('payload'))
        buf = Buffer.concat([buf, ((await once(socket, 'data')) as [Buffer])[0]])
      const parsed = parseProxyHeader(buf)
      expect(parsed).toMatchObject({
        kind: 'header',
        addresses: { sourceAddress: '192.0.2.99', sourcePort: 0, destinationAddress: '127.0.0.1' },
      })
      if (parsed.kind !== 'header') throw new Error('unreachable')
      expect(buf.subarray(parsed.length).toString()).toBe('payload')
      const wsClosed = closed(ws)
      ws.close()
      await wsClosed
    },
  )
})
