/**
 * Starts an in-process daemon with an access gate built from config overrides (routes, token files, …),
 * as the CLI does, and registers its shutdown (server, then the gate's watchers) with the disposer.
 */
import { createAccessFromConfig } from '../../src/auth/from-config.js'
import { DEFAULTS, type Config } from '../../src/config/options.js'
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import type { Access } from '../../src/auth/access.js'
import type { Disposer } from './disposer.js'
import type { MemoryLogger } from './tunnel.js'

export interface AccessTunnel {
  server: TunnelServer
  access: Access | undefined
  port: number
  url: string
}

export async function startAccessTunnel(
  disposer: Disposer,
  overrides: Partial<Config>,
  logger: MemoryLogger,
): Promise<AccessTunnel> {
  const config = daemonConfig(overrides)
  const access = await createAccessFromConfig(config, { logger })
  disposer.add(() => access?.close())
  const server = createTunnelServer(config, { logger, access })
  await server.listen()
  disposer.add(() => server.close({ drainTimeoutMs: 0 }))
  const port = (server.address() as { port: number }).port
  return { server, access, port, url: `ws://127.0.0.1:${port}/` }
}

/** A daemon's config for tests: loopback, an ephemeral port, no heartbeat, no fixed target, then `overrides`. */
export function daemonConfig(overrides: Partial<Config>): Config {
  return {
    ...DEFAULTS,
    heartbeatMs: 0,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target: undefined,
    ...overrides,
  }
}

/** Fails the test if any captured log line (message or any field) contains one of `secrets`. */
export function expectNoSecretsLogged(logger: MemoryLogger, secrets: readonly string[]): void {
  for (const line of logger.lines) {
    const text = JSON.stringify(line)
    for (const secret of secrets) {
      if (text.includes(secret)) throw new Error(`a log line contains a token: ${line.msg}`)
    }
  }
}
