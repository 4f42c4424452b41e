/**
 * @module targets/routes
 * Static routes from the config file: named targets, each with its own options and the tokens that open
 * it. These targets are the operator's own, so the target policy does not apply to them. Tokens are looked
 * up by their SHA-256 (no secret is compared character by character).
 */
import { parseTarget } from '../config/address.js'
import type { Target, TextPolicy } from '../config/options.js'
import { ConfigError } from '../errors.js'
import {
  describeValue,
  parseBytes,
  parseChoice,
  parseCount,
  parseList,
  parseSeconds,
} from '../config/option-values.js'
import { tokenKey } from '../auth/carriers.js'
import { parseTargetTlsSpec } from './target-tls.js'
import type { Resolution, RouteOptions, TargetResolver } from './resolver.js'

export interface Route {
  readonly name: string
  readonly target: Target
  readonly tokens: readonly string[]
  readonly options: RouteOptions
}

export type Routes = ReadonlyMap<string, Route>

const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/
const ROUTE_KEYS = [
  'target',
  'tokens',
  'connectTimeout',
  'idleTimeout',
  'highWaterMark',
  'text',
  'maxConnections',
  'maxBytes',
  'tls',
]

/**
 * Parses the config file's `routes` mapping: `name → { target, tokens?, connectTimeout?, idleTimeout?,
 * highWaterMark?, text?, maxConnections?, maxBytes?, tls? }` (`tls` only with a `tls://` target).
 * @throws {ConfigError} `<label>.<name>.<key>: …` naming the first bad value.
 */
export function parseRoutes(value: unknown, label: string, cwd?: string): Routes {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `${label}: expected a mapping of route names, got ${describeValue(value)}`,
    )
  }
  const routes = new Map<string, Route>()
  const owners = new Map<string, string>()
  for (const [name, spec] of Object.entries(value as Record<string, unknown>)) {
    const at = `${label}.${name}`
    if (!ROUTE_NAME.test(name)) {
      throw new ConfigError(`${at}: route names are letters, digits, "_", "." and "-"`)
    }
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new ConfigError(`${at}: expected a mapping with a "target", got ${describeValue(spec)}`)
    }
    const fields = spec as Record<string, unknown>
    for (const key of Object.keys(fields)) {
      if (!ROUTE_KEYS.includes(key)) {
        throw new ConfigError(
          `${at}: unknown key ${JSON.stringify(key)} (known: ${ROUTE_KEYS.join(', ')})`,
        )
      }
    }
    const target = field(at, 'target', fields['target'], (v) => {
      if (typeof v !== 'string')
        throw new ConfigError(`expected "host:port" or "unix:/path", got ${describeValue(v)}`)
      return parseTarget(v, { cwd })
    })
    const route: Route = {
      name,
      target,
      tokens:
        fields['tokens'] === undefined ? [] : field(at, 'tokens', fields['tokens'], parseTokens),
      options: withTls(at, target, parseRouteOptions(at, fields), fields['tls'], cwd),
    }
    for (const token of route.tokens) {
      const previous = owners.get(tokenKey(token))
      if (previous !== undefined) {
        throw new ConfigError(`${at}.tokens: a token is listed in both "${previous}" and "${name}"`)
      }
      owners.set(tokenKey(token), name)
    }
    routes.set(name, Object.freeze(route))
  }
  return routes
}

/** Like `parseList`, but a bad entry is not quoted back: it may be a token (errors are logged on reload). */
function parseTokens(value: unknown): readonly string[] {
  try {
    return parseList(value)
  } catch {
    throw new ConfigError('expected a token or a list of tokens, each a non-empty string')
  }
}

/** Per-route options in the config keys' own words (seconds, sizes). */
export function parseRouteOptions(at: string, fields: Record<string, unknown>): RouteOptions {
  const options: {
    -readonly [K in keyof RouteOptions]: RouteOptions[K]
  } = {}
  if (fields['connectTimeout'] !== undefined)
    options.connectTimeoutMs = field(at, 'connectTimeout', fields['connectTimeout'], parseSeconds)
  if (fields['idleTimeout'] !== undefined)
    options.idleTimeoutMs = field(at, 'idleTimeout', fields['idleTimeout'], parseSeconds)
  if (fields['highWaterMark'] !== undefined)
    options.highWaterMarkBytes = field(at, 'highWaterMark', fields['highWaterMark'], parseBytes)
  if (fields['text'] !== undefined)
    options.textPolicy = field(at, 'text', fields['text'], (v) =>
      parseChoice(['forward', 'reject'], v),
    ) as TextPolicy
  if (fields['maxConnections'] !== undefined)
    options.maxConnections = field(at, 'maxConnections', fields['maxConnections'], parseCount)
  if (fields['maxBytes'] !== undefined)
    options.maxBytes = field(at, 'maxBytes', fields['maxBytes'], parseBytes)
  return Object.freeze(options)
}

/** Adds a route's `tls` mapping (file paths only: target-tls.ts reads them when the daemon starts). */
function withTls(
  at: string,
  target: Target,
  options: RouteOptions,
  value: unknown,
  cwd: string | undefined,
): RouteOptions {
  if (value === undefined) return options
  if (target.kind !== 'tcp' || target.tls !== true) {
    throw new ConfigError(`${at}.tls: TLS settings need a tls://host:port target`)
  }
  const tls = field(at, 'tls', value, (v) => parseTargetTlsSpec(v, cwd))
  return Object.freeze({ ...options, tls })
}

function field<T>(at: string, key: string, value: unknown, parse: (v: unknown) => T): T {
  if (value === undefined) throw new ConfigError(`${at}: missing "${key}"`)
  try {
    return parse(value)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new ConfigError(`${at}.${key}: ${err.message}`, { cause: err })
  }
}

/** A resolution for a route (shared by the routes resolver and JWT claims that name a route). */
export function routeResolution(route: Route): Resolution {
  return {
    target: route.target,
    options: route.options,
    trusted: true,
    label: `route:${route.name}`,
    limitKey: `route:${route.name}`,
  }
}

/** Resolves the tokens listed under `routes.<name>.tokens`. */
export function staticRoutes(routes: Routes): TargetResolver {
  const byToken = new Map<string, Route>()
  for (const route of routes.values()) {
    for (const token of route.tokens) byToken.set(tokenKey(token), route)
  }
  return {
    name: 'routes',
    resolve(token) {
      const route = byToken.get(tokenKey(token))
      return Promise.resolve(route === undefined ? null : routeResolution(route))
    },
  }
}
