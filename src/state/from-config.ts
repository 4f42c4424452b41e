/**
 * @module state/from-config
 * The shared state a `Config` asks for (`--state-redis`), and its wiring into one tunnel server: a
 * revocation heard on the channel closes that token's live tunnels here.
 * Knows a tunnel server only as `TokenTunnels` (close by fingerprint, list), so state/ never imports the gateway.
 */
import type { Registry } from 'prom-client'
import { hasTokenSource, type Config } from '../config/options.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../log.js'
import { createSharedState, type SharedState } from './redis-state.js'

export interface StateFromConfigOptions {
  readonly logger: Logger
  readonly registry?: Registry | undefined
  /** Daemons that hold tunnels subscribe to revocations; a cluster primary does not. */
  readonly subscribe: boolean
}

/**
 * Undefined without `--state-redis`. Waits for the first connection attempt, so that a node does not listen
 * before it can check tokens; a node that starts while Redis is down starts anyway, refuses tunnels with
 * tokens (4503) and reports not ready until it is back.
 * @throws {ConfigError} for a value that is not a redis:// or rediss:// URL, or a daemon without tokens.
 */
export async function createStateFromConfig(
  config: Config,
  options: StateFromConfigOptions,
): Promise<SharedState | undefined> {
  if (config.stateRedis === undefined) return undefined
  checkStateUrl(config.stateRedis)
  if (!hasTokenSource(config)) {
    // Everything shared is about tokens: without them Redis would only be one more way to become unready.
    throw new ConfigError(
      '--state-redis shares token state between nodes: it needs tokens or routes',
    )
  }
  const state = createSharedState({
    url: config.stateRedis,
    prefix: config.statePrefix,
    subscribe: options.subscribe,
    logger: options.logger,
    registry: options.registry,
  })
  await state.connected().catch(() => undefined) // the failure is logged; the state keeps reconnecting
  return state
}

/** @throws {ConfigError} unless `url` is `redis://…` or `rediss://…`. */
export function checkStateUrl(url: string): void {
  if (!/^rediss?:\/\/[^/]/.test(url)) {
    throw new ConfigError(
      `--state-redis: expected redis://[:password@]host[:port][/db], got ${JSON.stringify(url)}`,
    )
  }
}

/** What `attachState` needs of a tunnel server (gateway/server.ts's `TunnelServer` is one). */
export interface TokenTunnels {
  closeTokenTunnels(fingerprint: string): number
  list(): readonly { readonly token?: string | undefined }[]
}

/** Revocations heard on the channel close this server's tunnels of that token. */
export function attachState(state: SharedState, server: TokenTunnels): void {
  state.watch({
    revoked: (fingerprint) => server.closeTokenTunnels(fingerprint),
    live: () =>
      server.list().flatMap((tunnel) => (tunnel.token === undefined ? [] : [tunnel.token])),
  })
}
