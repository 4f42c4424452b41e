import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { hashIncoming } from '../helpers/peers.js'
import { Digest } from '../helpers/data.js'
import { freePort, startBlackhole, startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { connectVia, NodeWebSocket, readAll, startWsServer } from '../helpers/shim.js'
import {
  CLOSE_CODES,
  TunnelError,
  TunnelWebSocket,
  type TunnelCloseEvent,
  type TunnelErrorCode,
} from '../../web/gangway.js'
import { CloseCode, SUBPROTOCOL_V1 } from '../../src/protocol.js'

const d = createDisposer()
afterEach(() => d.run())

const text = (s: string) => new TextEncoder().encode(s)

async function rejection(p: Promise<unknown>): Promise<TunnelError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TunnelError)
  return err as TunnelError
}

describe('connect()', () => {
  it('opened resolves when TCP is up, with both ends of the daemon’s TCP leg', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = connectVia(d, server.url())
    const info = await socket.opened
    const accepted = await echo.accepted(0)
    expect(info).toEqual({
      protocol: SUBPROTOCOL_V1,
      remoteAddress: '127.0.0.1',
      remotePort: echo.port,
      localAddress: '127.0.0.1',
      localPort: accepted.remotePort,
    })
  })

  it('queues writes made before opened and delivers them in order (pipelining)', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url())
    const writer = socket.writable.getWriter()
    const writes = ['GET ', '/ HTTP/1.0\r\n', '\r\n'].map((part) => writer.write(text(part)))
    const received = hashIncoming(await target.accepted(0))
    await Promise.all(writes)
    await writer.close()
    const want = new Digest()
    want.update(Buffer.from('GET / HTTP/1.0\r\n\r\n'))
    expect((await received).hex()).toBe(want.hex())
  })

  it('target EOF with allowHalfOpen: the readable ends, writing goes on, then both sides close', async () => {
    const target = await startTcpServer((s) => {
      s.allowHalfOpen = true
      s.end('bye')
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url(), { allowHalfOpen: true })
    expect((await readAll(socket.readable)).toString()).toBe('bye')
    const upstream = hashIncoming(await target.accepted(0))
    const writer = socket.writable.getWriter()
    await writer.write(text('still here'))
    await writer.close()
    const want = new Digest()
    want.update(Buffer.from('still here'))
    expect((await upstream).hex()).toBe(want.hex())
    await socket.closed
  })

  it('target EOF without allowHalfOpen ends the writable too, and closed resolves', async () => {
    const target = await startTcpServer((s) => s.end('bye'))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url())
    expect((await readAll(socket.readable)).toString()).toBe('bye')
    await socket.closed
    await expect(socket.writable.getWriter().write(text('late'))).rejects.toBeInstanceOf(
      TunnelError,
    )
  })

  it('writable.close() half-closes: the target sees EOF and its answer still arrives', async () => {
    const target = await startTcpServer((s) => {
      s.allowHalfOpen = true
      let request = ''
      s.on('data', (chunk: Buffer) => (request += chunk.toString()))
      s.on('end', () => s.end(`you said: ${request}`))
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url())
    const writer = socket.writable.getWriter()
    void writer.write(text('hello'))
    void writer.close()
    expect((await readAll(socket.readable)).toString()).toBe('you said: hello')
    await socket.closed
  })

  it('raw mode against a daemon that does not speak gangway.v1: opened on WebSocket open', async () => {
    const url = await startWsServer(
      d,
      (ws) => ws.on('message', (m: Buffer) => ws.send(m)),
      'binary',
    )
    const socket = connectVia(d, url)
    expect(await socket.opened).toEqual({ protocol: 'binary' })
    const writer = socket.writable.getWriter()
    await writer.write(text('ping'))
    const reader = socket.readable.getReader()
    expect(Buffer.from((await reader.read()).value!).toString()).toBe('ping')
  })

  it('sends the token as a gangway.bearer. subprotocol entry (base64url, no padding), fetched per connection', async () => {
    let calls = 0
    const seen: string[] = []
    const { WebSocketServer } = await import('ws')
    const wss = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      handleProtocols: (p) => (seen.push([...p].join(',')), SUBPROTOCOL_V1),
    })
    await once(wss, 'listening')
    d.add(() => new Promise((r) => wss.close(r)))
    wss.on('connection', (ws) => ws.close(1000))
    const port = (wss.address() as { port: number }).port
    const token = async () => `tök?${++calls}`
    for (let i = 0; i < 2; i++)
      await connectVia(d, `ws://127.0.0.1:${port}/`, { token }).closed.catch(() => {})
    expect(seen).toEqual([
      `gangway.v1,binary,gangway.bearer.${Buffer.from('tök?1').toString('base64url')}`,
      `gangway.v1,binary,gangway.bearer.${Buffer.from('tök?2').toString('base64url')}`,
    ])
    for (const ws of wss.clients) ws.terminate()
  })
})

describe('what a page sees', () => {
  it('the readable is a byte stream: a BYOB reader fills the caller’s buffer, credit still flows', async () => {
    const total = 3 * 1024 * 1024
    const target = await startTcpServer((s) => s.end(Buffer.alloc(total, 7)))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url(), { highWaterMark: 256 * 1024 })
    const reader = socket.readable.getReader({ mode: 'byob' })
    let buffer = new ArrayBuffer(100_000)
    let got = 0
    for (;;) {
      const { value, done } = await reader.read(new Uint8Array(buffer))
      if (done) break
      expect(value.every((b) => b === 7)).toBe(true)
      got += value.byteLength
      buffer = value.buffer // BYOB hands the (transferred) buffer back for the next read
    }
    expect(got).toBe(total) // more than the window: the reads granted credit
    await socket.closed
  })

  it('hears a drain before the 1001: draining resolves with the deadline, TunnelWebSocket fires draining', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = connectVia(d, server.url())
    await socket.opened
    const ws = new TunnelWebSocket('', { url: server.url(), WebSocket: NodeWebSocket })
    await new Promise((resolve) => ws.addEventListener('open', resolve))
    const heard = new Promise<number>((resolve) =>
      ws.addEventListener('draining', (e) => resolve((e as Event & { ms: number }).ms)),
    )
    const stopping = server.close({ drainTimeoutMs: 60_000 })
    expect(await socket.draining).toBe(60_000)
    expect(await heard).toBe(60_000)
    // The page reconnects elsewhere and lets this one go: the daemon's drain then ends early.
    await socket.close()
    ws.close()
    await stopping
  })

  it('the drain notice comes before the 1001 even with no drain time', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const socket = connectVia(d, server.url())
    await socket.opened
    let drained = false
    void socket.draining.then(() => (drained = true))
    void server.close({ drainTimeoutMs: 0 })
    expect((await rejection(socket.closed)).code).toBe('GOING_AWAY')
    expect(drained).toBe(true)
  })
})

describe('TunnelWebSocket', () => {
  it('opens on TCP connect, copies what send() is given (callers reuse buffers), and closes 1000 on EOF', async () => {
    const target = await startTcpServer((s) => {
      let got = ''
      s.on('data', (c: Buffer) => {
        got += c.toString()
        if (got.length === 6) s.end(`got ${got}`)
      })
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const ws = new TunnelWebSocket('', { url: server.url(), WebSocket: NodeWebSocket })
    d.add(() => ws.close())
    expect(Object.keys(ws)).toEqual(
      expect.arrayContaining([
        'readyState',
        'binaryType',
        'protocol',
        'onopen',
        'onmessage',
        'onclose',
        'onerror',
      ]),
    )
    await new Promise((resolve) => (ws.onopen = resolve))
    expect([ws.readyState, ws.protocol]).toEqual([1, SUBPROTOCOL_V1])
    const messages: string[] = []
    ws.addEventListener('message', (e) =>
      messages.push(Buffer.from(e.data as ArrayBuffer).toString()),
    )
    const reused = new Uint8Array(3)
    reused.set(text('abc'))
    ws.send(reused)
    reused.set(text('xyz')) // noVNC refills its send buffer as soon as send() returns
    ws.send(reused.subarray(0, 3))
    const event = await new Promise<TunnelCloseEvent>((resolve) => (ws.onclose = resolve))
    expect([event.code, event.wasClean, messages.join('')]).toEqual([1000, true, 'got abcxyz'])
    expect(ws.readyState).toBe(3)
  })

  it('reports a refused target as an error event and a close event with 4502 and the TunnelError', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const ws = new TunnelWebSocket('', { url: server.url(), WebSocket: NodeWebSocket })
    let errored = false
    ws.addEventListener('error', () => (errored = true))
    const event = await new Promise<TunnelCloseEvent>((resolve) =>
      ws.addEventListener('close', resolve),
    )
    expect([errored, event.code, event.wasClean, event.error?.code]).toEqual([
      true,
      4502,
      false,
      'TARGET_REFUSED',
    ])
  })
})

describe('errors', () => {
  it('maps every documented close code to a typed TunnelError', async () => {
    for (const [code, name] of Object.entries(CLOSE_CODES)) {
      const closeCode = Number(code)
      const url = await startWsServer(
        d,
        (ws) => (closeCode === 1006 ? ws.terminate() : ws.close(closeCode, 'why')),
        SUBPROTOCOL_V1,
      )
      const err = await rejection(connectVia(d, url).closed)
      expect([err.code, err.closeCode]).toEqual([name, closeCode])
      if (closeCode !== 1006) expect(err.reason).toBe('why')
    }
  })

  const daemonCases: Array<[string, TunnelErrorCode, number]> = [
    ['a refused target', 'TARGET_REFUSED', CloseCode.TARGET_REFUSED],
    ['an unreachable target', 'TARGET_UNREACHABLE', CloseCode.TARGET_UNREACHABLE],
    ['a target that does not answer', 'TARGET_TIMEOUT', CloseCode.TARGET_TIMEOUT],
    ['too many connections', 'THROTTLED', CloseCode.TOO_MANY_CONNECTIONS],
  ]
  for (const [what, code, closeCode] of daemonCases) {
    it(`reports ${what} from the real daemon as ${code} (opened rejects)`, async () => {
      let server
      if (code === 'TARGET_REFUSED') server = await startTunnel(d, tcpTarget(await freePort()))
      else if (code === 'TARGET_UNREACHABLE')
        server = await startTunnel(d, { kind: 'unix', path: '/nonexistent/gangway.sock' })
      else if (code === 'TARGET_TIMEOUT') {
        const hole = await startBlackhole()
        d.add(() => hole.close())
        server = await startTunnel(d, tcpTarget(hole.port), { connectTimeoutMs: 100 })
      } else {
        const echo = await startEchoServer()
        d.add(() => echo.close())
        server = await startTunnel(d, tcpTarget(echo.port), { maxConnections: 1 })
        await connectVia(d, server.url()).opened
      }
      const err = await rejection(connectVia(d, server.url()).opened)
      expect([err.code, err.closeCode]).toEqual([code, closeCode])
    })
  }

  it('reports a target reset mid-stream as TARGET_RESET on closed and the readable', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const socket = connectVia(d, server.url())
    await socket.opened
    ;(await target.accepted(0)).resetAndDestroy()
    expect((await rejection(socket.closed)).code).toBe('TARGET_RESET')
    expect((await rejection(socket.readable.getReader().read())).code).toBe('TARGET_RESET')
  })

  it('reports idle timeout, daemon shutdown and an oversized message', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const idle = await startTunnel(d, tcpTarget(echo.port), { idleTimeoutMs: 50 })
    expect((await rejection(connectVia(d, idle.url()).closed)).code).toBe('IDLE_TIMEOUT')

    // Binary data has no size limit; text has: the shim's first credit message is 33 bytes of text.
    const small = await startTunnel(d, tcpTarget(echo.port), { maxMessageBytes: 16 })
    const socket = connectVia(d, small.url())
    expect((await rejection(socket.closed)).code).toBe('MESSAGE_TOO_BIG')

    const draining = await startTunnel(d, tcpTarget(echo.port))
    const live = connectVia(d, draining.url())
    await live.opened
    void draining.close({ drainTimeoutMs: 0 })
    expect((await rejection(live.closed)).code).toBe('GOING_AWAY')
  })

  it('aborts through an AbortSignal, before and after open', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const early = connectVia(d, server.url(), { signal: AbortSignal.abort('changed my mind') })
    const err = await rejection(early.opened)
    expect([err.code, err.reason]).toEqual(['ABORTED', 'changed my mind'])

    const controller = new AbortController()
    const late = connectVia(d, server.url(), { signal: controller.signal })
    await late.opened
    controller.abort()
    expect((await rejection(late.closed)).code).toBe('ABORTED')
    expect((await rejection(late.readable.getReader().read())).code).toBe('ABORTED')
  })

  it('times out when no open message arrives within connectTimeout', async () => {
    const url = await startWsServer(d, () => {}, SUBPROTOCOL_V1)
    const err = await rejection(connectVia(d, url, { connectTimeout: 50 }).opened)
    expect(err.code).toBe('TIMEOUT')
  })

  it('reports a failing token function as TOKEN_ERROR without connecting', async () => {
    const socket = connectVia(d, 'ws://127.0.0.1:9/', {
      token: () => Promise.reject(new Error('no session')),
    })
    const err = await rejection(socket.opened)
    expect(err.code).toBe('TOKEN_ERROR')
  })

  it('raw mode has no credit: a reader that never reads gets OVERFLOW instead of unbounded memory', async () => {
    const url = await startWsServer(
      d,
      (ws) => {
        const chunk = Buffer.alloc(64 * 1024)
        for (let i = 0; i < 160; i++) ws.send(chunk)
      },
      'binary',
    )
    const socket = connectVia(d, url, { highWaterMark: 1 << 20 })
    expect((await rejection(socket.closed)).code).toBe('OVERFLOW')
  })
})
