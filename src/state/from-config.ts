/**
 * @module state/from-config
 * The shared state a `Config` asks for (`--state-redis`), and its wiring into one tunnel server: a
 * revocation heard on the channel closes that token's live tunnels here.
 */
import type { Registry } from 'prom-client'
import type { Config } from '../config.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../log.js'
import type { TunnelServer } from '../server.js'
import { createSharedState, type SharedState } from './redis-state.js'

export interface StateFromConfigOptions {
  readonly logger: Logger
  readonly registry?: Registry | undefined
  /** Daemons that hold tunnels subscribe to revocations; a cluster primary does not. */
  readonly subscribe: boolean
}

/**
 * Undefined without `--state-redis`. Does not wait for Redis: a node that starts while Redis is down
 * refuses tunnels with tokens (4503) and reports not ready until it is back.
 * @throws {ConfigError} for a value that is not a redis:// or rediss:// URL.
 */
export function createStateFromConfig(
  config: Pick<Config, 'stateRedis' | 'statePrefix'>,
  options: StateFromConfigOptions,
): SharedState | undefined {
  if (config.stateRedis === undefined) return undefined
  checkStateUrl(config.stateRedis)
  return createSharedState({
    url: config.stateRedis,
    prefix: config.statePrefix,
    subscribe: options.subscribe,
    logger: options.logger,
    registry: options.registry,
  })
}

/** @throws {ConfigError} unless `url` is `redis://…` or `rediss://…`. */
export function checkStateUrl(url: string): void {
  if (!/^rediss?:\/\/[^/]/.test(url)) {
    throw new ConfigError(
      `--state-redis: expected redis://[:password@]host[:port][/db], got ${JSON.stringify(url)}`,
    )
  }
}

/** Revocations heard on the channel close this server's tunnels of that token. */
export function attachState(state: SharedState, server: TunnelServer): void {
  state.watch({
    revoked: (fingerprint) => server.closeTokenTunnels(fingerprint),
    live: () =>
      server.list().flatMap((tunnel) => (tunnel.token === undefined ? [] : [tunnel.token])),
  })
}
