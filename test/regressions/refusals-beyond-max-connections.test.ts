/**
 * Found by the outside attack review (issue 13, finding 9): refusals beyond `--max-connections` were not
 * bounded. A refusal completes the upgrade and sends a close frame; a client that never answers it held
 * its connection for ws's 30 s close timeout, and nothing capped how many did: 300 such clients held 300
 * descriptors. Now a refused client gets `--handshake-timeout` to answer, and `--max-handshakes` caps the
 * connections not carrying a tunnel: beyond it, new connections are dropped at accept.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

/** A client that sends an upgrade and never answers the close frame: resolves with its first bytes. */
async function silentRefused(
  port: number,
): Promise<{ socket: net.Socket; first: Buffer | 'closed' }> {
  const socket = net.connect(port, '127.0.0.1')
  d.add(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(upgradeRequest())
  const first = await Promise.race([
    once(socket, 'data').then(([chunk]) => chunk as Buffer),
    once(socket, 'close').then(() => 'closed' as const),
  ])
  return { socket, first }
}

/** A tunnel server at its --max-connections (1) with one tunnel open. */
async function fullServer(overrides: Record<string, number>) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const logger = memoryLogger()
  const server = await startTunnel(
    d,
    tcpTarget(echo.port),
    { maxConnections: 1, ...overrides },
    logger,
  )
  await openWs(d, server.url())
  return { port: (server.address() as { port: number }).port, logger }
}

describe('regression: refusals beyond --max-connections', () => {
  it(
    'a refused client that never answers the close frame is cut after --handshake-timeout',
    { timeout: 20_000 },
    async () => {
      const { port } = await fullServer({ handshakeTimeoutMs: 1000 })
      const { socket, first } = await silentRefused(port)
      expect(first).not.toBe('closed')
      expect((first as Buffer).toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
      await once(socket, 'close') // before ws's 30 s close timeout
    },
  )

  it('beyond --max-handshakes, new connections are dropped at accept', async () => {
    const { port, logger } = await fullServer({ handshakeTimeoutMs: 60_000, maxHandshakes: 3 })
    const held = []
    for (let i = 0; i < 3; i++) {
      const client = await silentRefused(port)
      expect(client.first).not.toBe('closed') // served: 101 and a 4429 close frame
      held.push(client.socket)
    }
    const dropped = await silentRefused(port)
    expect(dropped.first).toBe('closed')
    expect(
      (await logger.waitFor('connection dropped: too many connections in their handshake')).fields,
    ).toMatchObject({ limit: 3 })
    // One of the held clients leaves: there is room again.
    held[0]!.destroy()
    let served = false
    for (let attempt = 0; attempt < 100 && !served; attempt++) {
      served = (await silentRefused(port)).first !== 'closed'
    }
    expect(served).toBe(true)
  })
})
