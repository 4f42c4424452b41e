/**
 * Reported in issue 14: bytes whose `write()` had resolved were lost when the page closed the socket.
 * `await write(3 MiB); await write(9 bytes); await close()` delivered 3,145,728 of 3,145,737 bytes; a short
 * `SET` then `close()` delivered nothing (`up: 0`); `TunnelWebSocket`'s `send(x); close()` lost `x`. The
 * shim closed the WebSocket while accepted bytes still waited in its coalescing queue (or for credit).
 * Also: writes after `close()` or `readable.cancel()` resolved into nothing. Against a real daemon and a
 * TCP sink that collects every byte until the daemon's FIN.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { createDisposer } from '../helpers/disposer.js'
import { collectIncoming } from '../helpers/peers.js'
import { startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { connectVia, NodeWebSocket } from '../helpers/shim.js'
import { TunnelError, TunnelWebSocket, type TunnelCloseEvent } from '../../web/gangway.js'

const d = createDisposer()
afterEach(() => d.run())

async function sinkTunnel(onSocket?: Parameters<typeof startTcpServer>[0]) {
  const sink = await startTcpServer(onSocket)
  d.add(() => sink.close())
  const logger = memoryLogger()
  const server = await startTunnel(d, tcpTarget(sink.port), {}, logger)
  return { sink, server, logger }
}

describe('regression: close() after resolved writes', () => {
  it('delivers a 3 MiB write and a 9-byte write when close() follows them', async () => {
    const { sink, server } = await sinkTunnel()
    const socket = connectVia(d, server.url())
    const writer = socket.writable.getWriter()
    const a = randomBytes(3 * 1024 * 1024)
    const b = randomBytes(9)
    await writer.write(a)
    await writer.write(b)
    const received = collectIncoming(await sink.accepted(0))
    await socket.close()
    await socket.closed
    const got = await received
    expect(got.length).toBe(3_145_737)
    expect(got.equals(Buffer.concat([a, b]))).toBe(true)
  })

  it('delivers a short SET written just before close()', async () => {
    const { sink, server, logger } = await sinkTunnel()
    const socket = connectVia(d, server.url())
    const writer = socket.writable.getWriter()
    await writer.write(new TextEncoder().encode('SET k v\r\n'))
    await socket.close()
    expect((await collectIncoming(await sink.accepted(0))).toString()).toBe('SET k v\r\n')
    expect((await logger.waitFor('tunnel closed')).fields.up).toBe(9)
  })

  it('delivers bytes written before opened and closed at once (pipelined)', async () => {
    const { sink, server } = await sinkTunnel()
    const socket = connectVia(d, server.url())
    void socket.writable.getWriter().write(new TextEncoder().encode('early'))
    await new Promise((r) => setTimeout(r, 0))
    void socket.close()
    expect((await collectIncoming(await sink.accepted(0))).toString()).toBe('early')
    await socket.closed
  })

  it('delivers a write held by a spent credit window once the target reads again', async () => {
    const { sink, server } = await sinkTunnel((s) => s.pause())
    const socket = connectVia(d, server.url(), { highWaterMark: 4 * 1024 * 1024 })
    const writer = socket.writable.getWriter()
    const payload = randomBytes(3 * 1024 * 1024) // more than the daemon's 1 MiB window: some waits here
    await writer.write(payload)
    const closing = socket.close()
    const target = await sink.accepted(0)
    const received = collectIncoming(target)
    target.resume()
    await closing
    await socket.closed
    expect((await received).equals(payload)).toBe(true)
  })

  it('TunnelWebSocket: send(x) then close() delivers x, and the close code and reason reach the daemon log', async () => {
    const { sink, server, logger } = await sinkTunnel()
    const ws = new TunnelWebSocket('', { url: server.url(), WebSocket: NodeWebSocket })
    await new Promise((resolve) => (ws.onopen = resolve))
    const closing = new Promise<TunnelCloseEvent>((resolve) => (ws.onclose = resolve))
    ws.send(new TextEncoder().encode('hello'))
    ws.send('world')
    ws.close(4000, 'page closed')
    expect((await collectIncoming(await sink.accepted(0))).toString()).toBe('helloworld')
    const line = await logger.waitFor('tunnel closed')
    expect([line.fields.code, line.fields.reason, line.fields.by]).toEqual([
      4000,
      'page closed',
      'client',
    ])
    const event = await closing
    expect([event.code, event.reason, event.wasClean]).toEqual([4000, 'page closed', true])
  })

  it('rejects a write made after close() and after readable.cancel(), instead of resolving into nothing', async () => {
    const { server } = await sinkTunnel()
    const socket = connectVia(d, server.url())
    await socket.opened
    const writer = socket.writable.getWriter()
    void socket.close()
    const err = await writer.write(new Uint8Array([1])).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(TunnelError)
    expect((err as TunnelError).code).toBe('CLOSED')

    const other = connectVia(d, server.url())
    await other.opened
    const w2 = other.writable.getWriter()
    await other.readable.cancel()
    await expect(w2.write(new Uint8Array([1]))).rejects.toMatchObject({ code: 'CLOSED' })
  })
})
