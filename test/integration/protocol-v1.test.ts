import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { Digest } from '../helpers/data.js'
import { hashIncoming, pushRandom } from '../helpers/peers.js'
import { startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed } from '../helpers/ws.js'
import { CloseCode, INITIAL_CREDIT, SUBPROTOCOL_V1 } from '../../src/protocol.js'
import { chooseSubprotocol } from '../../src/gateway/accept-upgrade.js'

const MiB = 1024 * 1024
const d = createDisposer()
afterEach(() => d.run())

/** A gangway.v1 client on ws: control messages parsed in order, binary bytes counted and hashed. */
async function openV1(url: string) {
  const ws = new WebSocket(url, [SUBPROTOCOL_V1], { perMessageDeflate: false })
  d.add(() => ws.terminate())
  const control: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  const digest = new Digest()
  let received = 0
  let window = INITIAL_CREDIT // what the daemon lets us send
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      received += data.length
      digest.update(data)
    } else {
      const message = JSON.parse(data.toString()) as Record<string, unknown>
      if (message.type === 'credit') window += message.bytes as number
      else control.push(message)
    }
    for (const wake of waiters.splice(0)) wake()
  })
  await once(ws, 'open')
  /** Resolves once `test()` holds (checked after every message). */
  function until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => (test() ? resolve() : waiters.push(check))
      waiters.push(check)
    })
  }
  const sendControl = (message: object) => ws.send(JSON.stringify(message))
  /** Sends within the daemon's send window, waiting for its credit. */
  async function sendData(bytes: Buffer): Promise<void> {
    for (let at = 0; at < bytes.length;) {
      await until(() => window > 0)
      const n = Math.min(window, 64 * 1024, bytes.length - at)
      ws.send(bytes.subarray(at, at + n))
      window -= n
      at += n
    }
  }
  return { ws, control, digest, until, sendControl, sendData, received: () => received }
}

describe('subprotocol selection', () => {
  it('selects gangway.v1, else echoes binary, else nothing, and never a bearer entry', () => {
    expect(chooseSubprotocol(new Set(['binary', 'gangway.v1']))).toBe('gangway.v1')
    expect(chooseSubprotocol(new Set(['gangway.bearer.abc', 'binary']))).toBe('binary')
    expect(chooseSubprotocol(new Set(['gangway.bearer.abc']))).toBe(false)
    expect(chooseSubprotocol(new Set(['chat']))).toBe(false)
  })
})

describe('gangway.v1', () => {
  it('sends open first, with both ends of the TCP leg', async () => {
    const target = await startTcpServer((s) => s.write('hello'))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const c = await openV1(server.url())
    expect(c.ws.protocol).toBe(SUBPROTOCOL_V1)
    await c.until(() => c.received() === 5)
    const socket = await target.accepted(0)
    expect(c.control[0]).toEqual({
      type: 'open',
      remoteAddress: '127.0.0.1',
      remotePort: target.port,
      localAddress: '127.0.0.1',
      localPort: socket.remotePort,
    })
  })

  it('target FIN arrives as eof without closing; the client keeps writing, then its eof closes 1000', async () => {
    const target = await startTcpServer((s) => {
      s.allowHalfOpen = true
      s.end('bye')
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const c = await openV1(server.url())
    const socket = await target.accepted(0)
    const upstream = hashIncoming(socket)
    await c.until(() => c.control.some((m) => m.type === 'eof'))
    expect(c.received()).toBe(3)
    const payload = randomBytes(2 * MiB)
    await c.sendData(payload)
    const wsClosed = closed(c.ws)
    c.sendControl({ type: 'eof' })
    const want = new Digest()
    want.update(payload)
    expect((await upstream).hex()).toBe(want.hex())
    expect(await wsClosed).toEqual({ code: CloseCode.NORMAL, reason: 'both sides closed' })
  })

  it('client eof ends the target write side while target data still flows, then both close 1000', async () => {
    const target = await startTcpServer((s) => (s.allowHalfOpen = true))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const c = await openV1(server.url())
    const socket = await target.accepted(0)
    c.ws.send(Buffer.from('request'))
    c.sendControl({ type: 'eof' })
    const request = await hashIncoming(socket) // resolves on the target's 'end'
    const want = new Digest()
    want.update(Buffer.from('request'))
    expect(request.hex()).toBe(want.hex())
    c.sendControl({ type: 'credit', bytes: 8 * MiB })
    const sent = await pushRandom(socket, 4 * MiB)
    const wsClosed = closed(c.ws)
    socket.end()
    expect(await wsClosed).toEqual({ code: CloseCode.NORMAL, reason: 'both sides closed' })
    expect(c.control.map((m) => m.type)).toEqual(['open', 'eof'])
    expect(c.digest.hex()).toBe(sent.hex())
  })

  it('never sends beyond the granted window, and resumes the target on credit', async () => {
    const total = 16 * MiB
    let pushed: Promise<Digest> | undefined
    const target = await startTcpServer((s) => void (pushed = pushRandom(s, total)))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const c = await openV1(server.url())
    let granted = INITIAL_CREDIT
    let overshoot = 0
    c.ws.on('message', () => (overshoot = Math.max(overshoot, c.received() - granted)))
    await c.until(() => c.received() === INITIAL_CREDIT)
    // The daemon holds at most one read beyond the window; the target's writes stall in the kernel.
    expect(server.stats().heldBytes).toBeLessThanOrEqual(2 * MiB)
    while (granted < total) {
      const step = Math.min(MiB, total - granted)
      granted += step
      c.sendControl({ type: 'credit', bytes: step })
      await c.until(() => c.received() === granted)
    }
    expect(overshoot).toBe(0)
    expect(c.digest.hex()).toBe((await pushed!).hex())
  })

  it('relays binary data byte-exact through an echo target', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const c = await openV1(server.url())
    c.sendControl({ type: 'credit', bytes: 64 * MiB })
    const payload = randomBytes(8 * MiB)
    await c.sendData(payload)
    await c.until(() => c.received() === payload.length)
    const want = new Digest()
    want.update(payload)
    expect(c.digest.hex()).toBe(want.hex())
  })

  const bad: Array<[string, (ws: WebSocket) => void, string]> = [
    ['not JSON', (ws) => ws.send('eof'), 'control message is not JSON'],
    ['an unknown type', (ws) => ws.send('{"type":"starttls"}'), 'unknown control message type'],
    ['a non-object', (ws) => ws.send('[1]'), 'control message is not a JSON object'],
    [
      'a negative credit',
      (ws) => ws.send('{"type":"credit","bytes":-1}'),
      'credit bytes must be a positive integer',
    ],
    [
      'a credit overflowing the window',
      (ws) => ws.send(`{"type":"credit","bytes":${Number.MAX_SAFE_INTEGER}}`),
      'credit window overflow',
    ],
    [
      'a second eof',
      (ws) => (ws.send('{"type":"eof"}'), ws.send('{"type":"eof"}')),
      'eof sent twice',
    ],
    [
      'data after eof',
      (ws) => (ws.send('{"type":"eof"}'), ws.send(Buffer.from('x'))),
      'data after eof',
    ],
    [
      'data beyond the send window',
      (ws) => ws.send(Buffer.alloc(3 * MiB)),
      'data beyond the granted window',
    ],
    ['an oversized message', (ws) => ws.send(' '.repeat(2000)), 'control message too long'],
  ]
  for (const [what, send, reason] of bad) {
    it(`closes 4400 on ${what}`, async () => {
      const target = await startTcpServer()
      d.add(() => target.close())
      const server = await startTunnel(d, tcpTarget(target.port))
      const c = await openV1(server.url())
      const wsClosed = closed(c.ws)
      send(c.ws)
      expect(await wsClosed).toEqual({ code: CloseCode.BAD_MESSAGE, reason })
    })
  }

  it('a raw client offering binary keeps plain byte semantics (no control frames)', async () => {
    const target = await startTcpServer((s) => s.end('bye'))
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const ws = new WebSocket(server.url(), ['binary'], { perMessageDeflate: false })
    d.add(() => ws.terminate())
    const messages: Array<[Buffer, boolean]> = []
    ws.on('message', (m: Buffer, isBinary: boolean) => messages.push([m, isBinary]))
    await once(ws, 'open')
    expect(ws.protocol).toBe('binary')
    const [code] = (await once(ws, 'close')) as [number]
    expect(code).toBe(CloseCode.NORMAL)
    expect(messages.map(([m, b]) => [m.toString(), b])).toEqual([['bye', true]])
  })
})
