/**
 * @module auth/access
 * The access gate, run for every upgrade before anything is dialled: rate limit by client address →
 * Origin → token (carriers in precedence order) → resolver → target policy → per-token connection limit.
 * It answers with an `Admission` (where to dial, which addresses, per-route options) or a `Refusal`
 * carrying the `TunnelError` (4401/4403/4429/4503) and the token's fingerprint for the one log line.
 * Never logs a token, never dials.
 * Knows nothing of WebSockets, dialling or logging: it only answers.
 */
import type { LookupAddress } from 'node:dns'
import type { IncomingMessage } from 'node:http'
import { parseTarget } from '../config/address.js'
import type { Target } from '../config/options.js'
import { ConfigError, TunnelError, tunnelError } from '../errors.js'
import { fingerprint } from '../log.js'
import type { Resolution, RouteOptions, TargetResolver } from '../targets/resolver.js'
import type { TargetPolicy } from '../targets/policy.js'
import {
  createConnectionCounter,
  createFailureLimiter,
  type ConnectionCounter,
  type FailureLimiter,
} from './limits.js'
import type { OriginMatcher } from './origin.js'
import { extractToken, queryParameter, type TokenCarrier, type TokenSources } from './carriers.js'
import { clientNamedTarget, optionsForClientNamedTarget } from './named-target.js'

/** Failed attempts are counted over this window. */
export const FAILURE_WINDOW_MS = 60_000

export interface AccessOptions {
  /** Token → target. Undefined when the daemon runs without tokens. */
  readonly resolver: TargetResolver | undefined
  /** The positional TARGET; used when no resolver is configured (no auth, one target). */
  readonly fixedTarget: Target | undefined
  /** Applies to every target that is not the operator's own; undefined refuses such targets. */
  readonly policy: TargetPolicy | undefined
  readonly origins: OriginMatcher
  readonly sources: TokenSources
  /** Accept `?address=host:port` / `?target=` (needs a policy). */
  readonly clientTargets: boolean
  /** Failed attempts per client address per minute before 4429; 0 = no limit. */
  readonly maxAuthFailures: number
  readonly connectTimeoutMs: number
  /**
   * Open tunnels per token or route: pass one to keep the counts across config reloads, or the Redis-backed
   * one shared by several nodes (`--state-redis`). Default: counted in this process's memory.
   */
  readonly counter?: ConnectionCounter | undefined
  /** Failed attempts per address (made for `maxAuthFailures`); pass one to keep it across reloads. */
  readonly failures?: FailureLimiter | undefined
  /** Injectable clock for the failure window. */
  readonly now?: () => number
  /** Revoked tokens shared across nodes (`--state-redis`); throws while the store is unreachable. */
  readonly revocations?: { isRevoked(fingerprint: string): Promise<boolean> } | undefined
}

export interface Admission {
  readonly ok: true
  readonly target: Target
  /** Addresses the policy checked; the dial must use exactly these (no second DNS lookup). */
  readonly addresses: readonly LookupAddress[] | undefined
  readonly options: RouteOptions
  /** Route or resolver name for the logs. */
  readonly label: string | undefined
  readonly fingerprint: string | undefined
  readonly carrier: TokenCarrier | undefined
  /**
   * When (`performance.now()`) the shared revocations were asked about this token, if they were: a
   * revocation heard on the channel after this instant stops the tunnel (see state/redis-state.ts).
   */
  readonly revocationCheckedAt: number | undefined
  /** When the token expires (ms since the epoch), if its store says so. */
  readonly expiresAt?: number | undefined
  /** Gives back the per-token connection slot; call once when the tunnel (or the dial) ends. */
  release(): void
}

export interface Refusal {
  readonly ok: false
  readonly error: TunnelError
  readonly fingerprint: string | undefined
  readonly carrier: TokenCarrier | undefined
  /** The route the token resolved to, when the refusal came after that (a limit, shared state down). */
  readonly label?: string | undefined
}

export interface Access {
  admit(req: IncomingMessage, clientIp: string): Promise<Admission | Refusal>
  reload(): Promise<void>
  close(): Promise<void>
}

/** One answer for missing, malformed, unknown, expired or replayed tokens: do not reveal which. */
const INVALID_TOKEN = 'missing or invalid token'

/** @throws {ConfigError} for combinations that cannot work (client targets without a policy, …). */
export function createAccess(options: AccessOptions): Access {
  if (
    options.resolver === undefined &&
    options.fixedTarget === undefined &&
    !options.clientTargets
  ) {
    throw new ConfigError('nothing to dial: give a TARGET, a token source or routes')
  }
  if (options.resolver !== undefined && options.fixedTarget !== undefined) {
    throw new ConfigError(
      'a TARGET cannot be combined with tokens: to require a token for one target, make it a route with "tokens"',
    )
  }
  if (options.clientTargets && options.fixedTarget !== undefined) {
    throw new ConfigError('clientTargets cannot be combined with a TARGET')
  }
  if (options.clientTargets && options.policy === undefined) {
    throw new ConfigError('clientTargets needs a target policy (at least one --allow rule)')
  }
  const failures =
    options.failures ??
    createFailureLimiter(options.maxAuthFailures, FAILURE_WINDOW_MS, options.now ?? Date.now)
  const counter = options.counter ?? createConnectionCounter()

  async function admit(req: IncomingMessage, clientIp: string): Promise<Admission | Refusal> {
    let print: string | undefined
    let carrier: TokenCarrier | undefined
    let revocationCheckedAt: number | undefined
    let resolution: Resolution | null = null
    const refuse = (error: TunnelError): Refusal => ({
      ok: false,
      error,
      fingerprint: print,
      carrier,
      label: resolution?.label,
    })
    const denyToken = (why: string): Refusal => {
      failures.fail(clientIp)
      return refuse(tunnelError('ERR_TOKEN_INVALID', `${INVALID_TOKEN}: ${why}`))
    }

    if (failures.isBlocked(clientIp)) {
      return refuse(tunnelError('ERR_RATE_LIMITED', `too many failed attempts from ${clientIp}`))
    }
    const origin = req.headers.origin
    if (!options.origins.open && !options.origins.allows(origin)) {
      return refuse(
        tunnelError('ERR_ORIGIN_DENIED', `origin ${JSON.stringify(origin ?? null)} not allowed`),
      )
    }

    const named = clientNamedTarget(req.url)
    if (options.resolver !== undefined) {
      const found = extractToken(req, options.sources)
      carrier = found?.carrier
      if (found === undefined) return denyToken('no token')
      if (found.token === undefined) return denyToken(`malformed token in ${found.carrier}`)
      print = fingerprint(found.token)
      // A cookie rides along with any page's request: without an Origin check, any site could open
      // tunnels with the visitor's cookie (cross-site WebSocket hijacking).
      if (found.carrier === 'cookie' && (options.origins.open || !options.origins.allows(origin))) {
        return refuse(
          tunnelError(
            'ERR_ORIGIN_DENIED',
            options.origins.open
              ? 'token cookie refused: cookie tokens need allowedOrigins'
              : `origin ${JSON.stringify(origin ?? null)} not allowed for a cookie token`,
          ),
        )
      }
      if (options.revocations !== undefined) {
        revocationCheckedAt = performance.now()
        try {
          if (await options.revocations.isRevoked(print)) return denyToken('revoked')
        } catch (err) {
          return refuse(tunnelError('ERR_RESOLVER_UNAVAILABLE', errorText(err), err))
        }
      }
      let refusedBecause: string | undefined
      try {
        resolution = await options.resolver.resolve(found.token, req, (why) => {
          refusedBecause ??= why
        })
      } catch (err) {
        return refuse(
          tunnelError(
            'ERR_RESOLVER_UNAVAILABLE',
            `${options.resolver.name}: ${errorText(err)}`,
            err,
          ),
        )
      }
      if (resolution === null) {
        return denyToken(refusedBecause ?? `unknown to ${options.resolver.name}`)
      }
    }

    let target: Target
    let trusted: boolean
    let routeOptions: RouteOptions = resolution?.options ?? {}
    if (named !== undefined && options.clientTargets) {
      let parsed: Target
      try {
        parsed = parseTarget(named)
      } catch {
        return refuse(tunnelError('ERR_TARGET_DENIED', `client-named target is not an address`))
      }
      target = parsed
      trusted = false
      // The token is only the credential here: its route's TLS identity, timeouts and buffers stay with
      // the route's own target (issue 13, finding 4).
      routeOptions = optionsForClientNamedTarget(resolution?.options)
    } else if (named !== undefined) {
      // A page that names a target must never reach another one without being told (issue 13, finding 11):
      // not the fixed TARGET, not the token's route.
      return refuse(
        tunnelError(
          'ERR_TARGET_DENIED',
          "client-named targets are off (clientTargets): the target is the token's or the TARGET",
        ),
      )
    } else if (resolution !== null) {
      target = resolution.target
      trusted = resolution.trusted
    } else if (options.fixedTarget !== undefined) {
      target = options.fixedTarget
      trusted = true
    } else {
      // No token carrier is configured and no daemon target: only a client-named target could do, and the
      // request named none. Not an authentication failure (nothing to count against the client).
      return refuse(tunnelError('ERR_NO_TARGET', 'no target named (clientTargets)'))
    }

    // `?route=NAME` (the shim's `{ route }`) cannot choose a route, the token does; it asserts which one the
    // client means, so a token for another service is refused instead of connecting somewhere unexpected.
    const wanted = queryParameter(req.url, 'route')
    if (wanted !== undefined && resolution?.label !== `route:${wanted}`) {
      return refuse(
        tunnelError('ERR_TARGET_DENIED', `route ${JSON.stringify(wanted)}: not the token's route`),
      )
    }

    let addresses: readonly LookupAddress[] | undefined
    if (!trusted) {
      if (options.policy === undefined) {
        return refuse(
          tunnelError('ERR_TARGET_DENIED', 'no target policy: only configured targets are allowed'),
        )
      }
      try {
        const checked = await options.policy.check(target, {
          timeoutMs: routeOptions.connectTimeoutMs ?? options.connectTimeoutMs,
        })
        target = checked.target
        addresses = checked.addresses
      } catch (err) {
        if (err instanceof TunnelError) return refuse(err)
        throw err
      }
    }

    const tokenKey = print === undefined ? undefined : `token:${print}`
    // The route's (or token's) own limit, then a token's second limit on top of a route's (a JWT claim).
    const limits: { key: string | undefined; max: number | undefined }[] = [
      { key: resolution?.limitKey ?? tokenKey, max: routeOptions.maxConnections },
    ]
    if (resolution?.tokenLimit !== undefined) {
      limits.push({ key: resolution.tokenLimit.key ?? tokenKey, max: resolution.tokenLimit.max })
    }
    const held: (() => void)[] = []
    const release = (): void => {
      for (const slot of held) slot()
    }
    for (const { key, max } of limits) {
      if (key === undefined || max === undefined) continue
      let slot: (() => void) | undefined
      try {
        slot = await counter.acquire(key, max)
      } catch (err) {
        release()
        return refuse(tunnelError('ERR_RESOLVER_UNAVAILABLE', errorText(err), err))
      }
      if (slot === undefined) {
        release()
        return refuse(tunnelError('ERR_TOKEN_LIMIT', `${max} tunnels already open for this token`))
      }
      held.push(slot)
    }
    return {
      ok: true,
      target,
      addresses,
      options: routeOptions,
      label: resolution?.label,
      fingerprint: print,
      carrier,
      revocationCheckedAt,
      expiresAt: resolution?.expiresAt,
      release,
    }
  }

  return {
    admit,
    async reload() {
      await options.resolver?.reload?.()
    },
    async close() {
      await options.resolver?.close?.()
    },
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
