/**
 * @module targets/resolver
 * The one small interface every token backend implements: a token (and the request it came with) in, a
 * `Resolution` (where to dial, with per-route options) or `null` ("no such token") out. A resolver throws
 * only when its backing store fails; the daemon then refuses with 4503, never with 4401. Resolvers know
 * nothing of WebSockets, carriers or policy.
 */
import type { IncomingMessage } from 'node:http'
import type { Target } from '../config/address.js'
import type { RouteOptions } from '../config/routes.js'

export type { RouteOptions, Target }

/** What a token resolves to. */
export interface Resolution {
  readonly target: Target
  readonly options?: RouteOptions
  /**
   * True when the target comes from the operator's own configuration (static routes, token files): the
   * target policy is not applied. Everything else (token directories written by an application, JWT
   * claims, Redis, an HTTP API, client-named targets) is checked against the policy.
   */
  readonly trusted: boolean
  /** A name for the logs (a route name, the resolver's name); never the token. */
  readonly label?: string
  /** Tunnels with the same key share `maxConnections` (default: the token's fingerprint). */
  readonly limitKey?: string
  /**
   * A second limit for this token on top of the route's (a JWT naming a route with a `maxConnections`
   * claim): `max` tunnels under `key` (default: the token's fingerprint).
   */
  readonly tokenLimit?: { readonly key: string | undefined; readonly max: number }
  /** When the token expires (ms since the epoch), where its store says so: tunnels it opened end then. */
  readonly expiresAt?: number
}

/** Receives the operator-facing reason a token was refused (never the token itself). */
export type WhyRefused = (reason: string) => void

export interface TargetResolver {
  /** Short name for logs and errors (`routes`, `token-file`, `jwt`, …). */
  readonly name: string
  /**
   * `null` means "no such token" (the client gets 4401). Throw only when the backing store itself fails
   * (the client gets 4503). Before returning `null` for a token it recognised but refused (a JWT that is
   * expired, mis-signed, …), a resolver may tell `why` (prefixed with its name): that goes to the log line, never to the client.
   */
  resolve(token: string, req: IncomingMessage, why?: WhyRefused): Promise<Resolution | null>
  /** Re-reads the backing files (SIGHUP); a failed reload keeps the previous state and throws. */
  reload?(): Promise<void>
  /** Stops watchers and closes connections. */
  close?(): Promise<void>
}

/**
 * websockify's `"host"` + `"port"` fields (JWT claims, Redis values, token API answers) as one `host:port`
 * text, an IPv6 host bracketed; undefined unless both are there.
 */
export function hostPortFields(fields: Readonly<Record<string, unknown>>): string | undefined {
  const host = fields['host']
  const port = fields['port']
  if (typeof host !== 'string' || (typeof port !== 'number' && typeof port !== 'string')) {
    return undefined
  }
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`
}

/**
 * Asks each resolver in turn; the first resolution wins. When none knows the token but one of them
 * failed, the failure is rethrown: an outage must not look like an unknown token.
 */
export function chainResolvers(resolvers: readonly TargetResolver[]): TargetResolver {
  if (resolvers.length === 1 && resolvers[0]) return resolvers[0]
  return {
    name: resolvers.map((r) => r.name).join('+'),
    async resolve(token, req, why) {
      let failure: unknown
      let failed = false
      for (const resolver of resolvers) {
        try {
          const found = await resolver.resolve(token, req, why)
          if (found !== null) return found
        } catch (err) {
          failure ??= err
          failed = true
        }
      }
      if (failed) throw failure
      return null
    },
    async reload() {
      for (const resolver of resolvers) await resolver.reload?.()
    },
    async close() {
      await Promise.all(resolvers.map((r) => r.close?.() ?? Promise.resolve()))
    },
  }
}
