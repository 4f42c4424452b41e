/**
 * @module auth/from-config
 * Builds the access gate a `Config` describes: the resolvers (routes, token files, token directory, …)
 * chained in a fixed order, the origin list and the token carriers. Token files are read and validated here,
 * so a bad one stops the daemon before it listens.
 * Wiring only: it knows no request and never dials; the shared state arrives as the small `SharedAccessState` interface, so auth never imports state/.
 */
import type { Config } from '../config/options.js'
import { silentLogger, type Logger } from '../log.js'
import { chainResolvers, type TargetResolver } from '../targets/resolver.js'
import { httpTokenApi } from '../targets/http-api.js'
import { jwtTokens } from '../targets/jwt.js'
import { createTargetPolicy } from '../targets/policy.js'
import { redisTokens } from '../targets/redis.js'
import type { Routes } from '../config/routes.js'
import { staticRoutes } from '../targets/routes.js'
import { tokenDir } from '../targets/token-dir.js'
import { tokenFile } from '../targets/token-file.js'
import { createAccess, FAILURE_WINDOW_MS, type Access } from './access.js'
import {
  createConnectionCounter,
  createFailureLimiter,
  type ConnectionCounter,
  type FailureLimiter,
} from './limits.js'
import { allowOrigins } from './origin.js'

/** What the gate needs of the state shared across nodes (state/redis-state.ts's `SharedState` is one). */
export interface SharedAccessState {
  isRevoked(fingerprint: string): Promise<boolean>
  claimOnce(id: string, ttlMs: number): Promise<boolean>
  readonly slots: ConnectionCounter
}

export interface AccessFromConfigOptions {
  logger?: Logger
  /** State shared across nodes (`--state-redis`): revocations, connection slots, single-use JWT ids. */
  shared?: SharedAccessState | undefined
  /** State that outlives one gate (a SIGHUP reload builds a new gate): see `createAccessState`. */
  state?: AccessState
}

/** What a reloaded gate inherits from the one it replaces, so a reload resets no limit. */
export interface AccessState {
  /** Open tunnels per token or route (`maxConnections`). */
  readonly counter: ConnectionCounter
  /** Single-use JWT ids already used (`jwtSingleUse`), so a reload does not allow a replay. */
  readonly usedJti: Map<string, number>
  /** Failed attempts per client address; kept while `maxAuthFailures` stays the same. */
  failuresFor(max: number): FailureLimiter
}

export function createAccessState(): AccessState {
  let failures: { max: number; limiter: FailureLimiter } | undefined
  return {
    counter: createConnectionCounter(),
    usedJti: new Map(),
    failuresFor(max) {
      if (failures?.max !== max) {
        failures = { max, limiter: createFailureLimiter(max, FAILURE_WINDOW_MS) }
      }
      return failures.limiter
    },
  }
}

/**
 * The access gate for `config`, or undefined when the daemon runs open (one TARGET, no origin list).
 * Resolvers are asked in this order: routes, token file, token directory, signed tokens (JWT), token API, Redis.
 * @throws {ConfigError} for a bad token file (file name and line), origin or combination.
 */
export async function createAccessFromConfig(
  config: Config,
  options: AccessFromConfigOptions = {},
): Promise<Access | undefined> {
  const logger = options.logger ?? silentLogger
  const resolvers: TargetResolver[] = []
  const routes: Routes = config.routes ?? new Map()
  if ([...routes.values()].some((r) => r.tokens.length > 0)) resolvers.push(staticRoutes(routes))
  try {
    if (config.tokenFile !== undefined) {
      resolvers.push(await tokenFile({ path: config.tokenFile, watch: true, logger }))
    }
    if (config.tokenDir !== undefined) resolvers.push(await tokenDir({ path: config.tokenDir }))
    if (config.jwtKey !== undefined || config.jwksUrl !== undefined) {
      resolvers.push(
        await jwtTokens({
          keyFile: config.jwtKey,
          jwksUrl: config.jwksUrl,
          issuer: config.jwtIssuer,
          audience: config.jwtAudience,
          maxLifetimeMs: config.jwtMaxLifetimeMs,
          singleUse: config.jwtSingleUse,
          claimOnce: options.shared && ((jti, ttlMs) => options.shared!.claimOnce(jti, ttlMs)),
          routes,
          base64urlSecret: config.jwtSecretEncoding === 'base64url',
          usedJti: options.state?.usedJti,
        }),
      )
    }
    if (config.tokenApi !== undefined) {
      resolvers.push(
        httpTokenApi({
          url: config.tokenApi,
          timeoutMs: config.connectTimeoutMs,
          cacheMs: config.tokenApiCacheMs,
        }),
      )
    }
    if (config.tokenRedis !== undefined) {
      resolvers.push(
        redisTokens({
          source: config.tokenRedis,
          prefix: config.tokenRedisPrefix,
          timeoutMs: config.connectTimeoutMs,
        }),
      )
    }
    const origins = allowOrigins(config.allowedOrigins ?? [])
    const allow = config.allow ?? []
    const deny = config.deny ?? []
    const policy =
      allow.length + deny.length === 0 ? undefined : createTargetPolicy({ allow, deny })
    if (
      resolvers.length === 0 &&
      origins.open &&
      !config.clientTargets &&
      config.target !== undefined
    )
      return undefined
    return createAccess({
      resolver: resolvers.length === 0 ? undefined : chainResolvers(resolvers),
      fixedTarget: config.target,
      policy,
      origins,
      sources: { cookieName: config.tokenCookie, hostToken: config.hostToken },
      clientTargets: config.clientTargets,
      maxAuthFailures: config.maxAuthFailures,
      connectTimeoutMs: config.connectTimeoutMs,
      revocations: options.shared,
      // Several nodes count together in Redis; otherwise the count that outlives reloads.
      counter: options.shared?.slots ?? options.state?.counter,
      failures: options.state?.failuresFor(config.maxAuthFailures),
    })
  } catch (err) {
    await Promise.all(resolvers.map((r) => r.close?.() ?? Promise.resolve()))
    throw err
  }
}
