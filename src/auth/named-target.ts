/**
 * @module auth/named-target
 * Client-named targets (`?address=host:port`, `?target=`, `gangway client --target`): where a request names
 * one, and which of a token's per-route options still apply once the client, not the route, chose the
 * target. A route's options were written for the route's own target: its TLS identity (a client
 * certificate, a CA, `insecure`), its timeouts and buffers must never reach a target the route did not
 * name. Only the limits that bound the credential itself (how many tunnels, how many bytes) stay. Knows
 * nothing of policy, resolvers or sockets.
 */
import type { RouteOptions } from '../config/routes.js'
import { queryParameter } from './carriers.js'

/**
 * What each route option is about. `target`: a setting for the route's own target (dropped for a
 * client-named one, the daemon-wide value applies). `credential`: a limit on what the token may use
 * (kept: a token never gets more through a client-named target than through its route). A new route
 * option must be placed here before it compiles.
 */
export const ROUTE_OPTION_SCOPE: {
  readonly [K in keyof Required<RouteOptions>]: 'target' | 'credential'
} = {
  tls: 'target',
  // A route's login (its password) is for the route's own target only: never sent to one a client named.
  login: 'target',
  connectTimeoutMs: 'target',
  idleTimeoutMs: 'target',
  highWaterMarkBytes: 'target',
  textPolicy: 'target',
  maxConnections: 'credential',
  maxBytes: 'credential',
  maxDurationMs: 'credential',
}

/** The target a request names (`?address=`, else `?target=`), or undefined when it names none. */
export function clientNamedTarget(url: string | undefined): string | undefined {
  return queryParameter(url, 'address') ?? queryParameter(url, 'target')
}

/**
 * The one place that decides which of a token's route options apply to a target the client named: the
 * credential's limits, nothing that belongs to the route's own target.
 */
export function optionsForClientNamedTarget(route: RouteOptions | undefined): RouteOptions {
  const kept: Record<string, unknown> = {}
  if (route === undefined) return kept
  for (const [key, value] of Object.entries(route)) {
    if (ROUTE_OPTION_SCOPE[key as keyof RouteOptions] === 'credential') kept[key] = value
  }
  return kept
}
