/**
 * In-process Gangway nodes sharing state through Redis (`--state-redis`), wired as the CLI wires them, and a
 * TCP relay in front of Redis that a test can cut and restore (a Redis outage without stopping Redis).
 */
import net, { type Socket } from 'node:net'
import { once } from 'node:events'
import type { Registry } from 'prom-client'
import { createAccessFromConfig } from '../../src/auth/from-config.js'
import type { Config } from '../../src/config/options.js'
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import { attachState } from '../../src/state/from-config.js'
import { createSharedState, type SharedState } from '../../src/state/redis-state.js'
import { daemonConfig } from './access.js'
import type { Disposer } from './disposer.js'
import { freePort } from './tcp.js'
import type { MemoryLogger } from './tunnel.js'

export interface Node {
  server: TunnelServer
  state: SharedState
  url: string
}

export async function startNode(
  disposer: Disposer,
  redisUrl: string,
  overrides: Partial<Config>,
  logger: MemoryLogger,
  options: { prefix?: string; leaseMs?: number; waitForRedis?: boolean; registry?: Registry } = {},
): Promise<Node> {
  const config = daemonConfig(overrides)
  const state = createSharedState({
    url: redisUrl,
    prefix: options.prefix ?? 'test:',
    subscribe: true,
    logger,
    leaseMs: options.leaseMs,
    timeoutMs: 500,
    registry: options.registry,
  })
  disposer.add(() => state.close())
  const access = await createAccessFromConfig(config, { logger, shared: state })
  disposer.add(() => access?.close())
  const server = createTunnelServer(config, {
    logger,
    access,
    isRevoked: (print, since) => state.heardRevoked(print, since),
  })
  attachState(state, server)
  await server.listen()
  disposer.add(() => server.close({ drainTimeoutMs: 0 }))
  if (options.waitForRedis !== false) await state.connected()
  const port = (server.address() as { port: number }).port
  return { server, state, url: `ws://127.0.0.1:${port}/` }
}

export interface CuttableRelay {
  port: number
  /** Drops every relayed connection and stops accepting (the port refuses). */
  cut(): Promise<void>
  /** Accepts again on the same port. */
  restore(): Promise<void>
  close(): Promise<void>
}

/** A TCP relay to 127.0.0.1:`targetPort` on a port of its own. */
export async function startCuttableRelay(targetPort: number): Promise<CuttableRelay> {
  const port = await freePort()
  const sockets = new Set<Socket>()
  let server: net.Server | undefined

  async function open(): Promise<void> {
    const s = net.createServer(function relayOnConnection(client) {
      const upstream = net.connect(targetPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('error', () => undefined)
        socket.on('close', () => {
          sockets.delete(socket)
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream).pipe(client)
    })
    s.listen(port, '127.0.0.1')
    await once(s, 'listening')
    server = s
  }

  async function cut(): Promise<void> {
    const s = server
    server = undefined
    if (s === undefined) return
    const closed = new Promise<void>((resolve) => s.close(() => resolve()))
    for (const socket of sockets) socket.destroy()
    await closed
  }

  await open()
  return { port, cut, restore: open, close: cut }
}
