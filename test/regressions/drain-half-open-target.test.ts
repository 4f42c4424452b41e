/**
 * Found by the gangway.v1 control-message fuzzing (its teardown took 30 s): a tunnel the client had closed
 * waited for the target's FIN, and a target that never sends one (half-open) kept the tunnel, and with it
 * `close({ drainTimeoutMs: 0 })` (SIGTERM after --drain-timeout), alive until the 30 s close timeout.
 * Now closing a tunnel that is already ending tears it down at once.
 */
import net, { type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { SUBPROTOCOL_V1 } from '../../src/protocol.js'
import { createDisposer } from '../helpers/disposer.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

/** A target that never ends its side (it reads, and ignores the FIN). */
async function startHalfOpenTarget(): Promise<{ port: number; accepted: Promise<Socket> }> {
  let accept: (s: Socket) => void = () => {}
  const accepted = new Promise<Socket>((resolve) => (accept = resolve))
  const sockets: Socket[] = []
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {})
    socket.resume()
    sockets.push(socket)
    accept(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, accepted }
}

describe('regression: shutdown with a closed tunnel whose target never sends FIN', () => {
  it.each([
    ['raw', []],
    ['gangway.v1', [SUBPROTOCOL_V1]],
  ] as const)(
    '%s: close({ drainTimeoutMs: 0 }) tears it down instead of waiting for the close timeout',
    async (_mode, protocols) => {
      const target = await startHalfOpenTarget()
      const logger = memoryLogger()
      const server = await startTunnel(d, tcpTarget(target.port), {}, logger)
      const ws = await openWs(d, server.url(), { protocols: [...protocols] })
      const socket = await target.accepted
      const targetSawFin = once(socket, 'end')
      const wsClosed = closed(ws)
      ws.close(1000)
      await wsClosed
      await targetSawFin // the daemon ended its side; the target keeps its own open
      await server.close({ drainTimeoutMs: 0 }) // took 30 s before the fix (the test timed out)
      expect(server.stats().tunnels).toBe(0)
      expect((await logger.waitFor('tunnel closed')).fields).toMatchObject({
        code: 1000,
        by: 'client',
      })
    },
    10_000,
  )
})
