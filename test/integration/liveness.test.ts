import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startEchoTunnel, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

describe('heartbeat', () => {
  it('pings every --heartbeat seconds and keeps a peer that answers', async () => {
    // 1 s: on a busy shared machine our pong took longer than 200 ms at times, and a late one is a miss.
    const { server } = await startEchoTunnel(d, { heartbeatMs: 1000 })
    const ws = await openWs(d, server.url())
    const wsClosed = closed(ws)
    for (let i = 0; i < 3; i++) {
      // A close instead of the next ping fails the test at once instead of waiting for a ping forever.
      const next = await Promise.race([once(ws, 'ping').then(() => 'ping'), wsClosed])
      expect(next).toBe('ping')
    }
    ws.send(Buffer.from('still here'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('still here')
  })

  it('terminates a peer that stopped answering pings, and ends the target connection', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(target.port), { heartbeatMs: 50 }, logger)
    const ws = await openWs(d, server.url(), { autoPong: false })
    const targetSocket = await target.accepted(0)
    targetSocket.resume()
    const ended = once(targetSocket, 'end')
    expect((await closed(ws)).code).toBe(1006)
    await ended
    const line = await logger.waitFor('tunnel closed')
    expect(line.fields).toMatchObject({
      code: 1006,
      by: 'server',
      reason: 'heartbeat timeout: no pong from the client',
    })
  })
})

describe('--idle-timeout', () => {
  it('closes a tunnel without payload in either direction with 4408', async () => {
    const { server } = await startEchoTunnel(d, { idleTimeoutMs: 100 })
    const ws = await openWs(d, server.url())
    expect(await closed(ws)).toEqual({ code: 4408, reason: 'idle timeout: no payload for 0.1 s' })
  })

  it('payload keeps it open: echo round trips for three timeouts, then silence closes it', async () => {
    // 1 s: a round trip on a busy shared machine can take longer than 100 ms, at times longer than 500 ms.
    const { server } = await startEchoTunnel(d, { idleTimeoutMs: 1000 })
    const ws = await openWs(d, server.url())
    const wsClosed = closed(ws)
    let closedEarly = false
    void wsClosed.then(() => (closedEarly = true))
    const start = performance.now()
    let rounds = 0
    while (performance.now() - start < 3000 && rounds < 1_000_000 && !closedEarly) {
      ws.send(Buffer.from([rounds & 0xff]))
      // A close instead of the echo must end the loop, not leave it waiting for a message forever.
      await Promise.race([once(ws, 'message'), wsClosed])
      rounds++
    }
    expect(closedEarly).toBe(false)
    expect((await wsClosed).code).toBe(4408)
  })
})
