/**
 * @module config/routes
 * The config file's `routes` mapping: named targets, each with its options and the tokens that open it,
 * parsed and checked when the config is read (targets/routes.ts resolves tokens against them). Tokens are
 * kept under their SHA-256 (`tokenKey`), so no secret is compared character by character.
 * Pure parsing: knows nothing of requests, resolvers or the policy.
 */
import { createHash } from 'node:crypto'
import { parseTarget, type Target } from './address.js'
import { ConfigError } from '../errors.js'
import {
  describeValue,
  parseBytes,
  parseChoice,
  parseCount,
  parseList,
  parseSeconds,
} from './option-values.js'
import { parseTargetTlsSpec, type TargetTlsSpec } from './target-tls-spec.js'
import { parseLoginSpec, type LoginSpec } from './login-spec.js'

/** What the daemon does with a text frame: relay its bytes, or close with 1003. */
export type TextPolicy = 'forward' | 'reject'

/** Per-route (or per-token) options; each one overrides the daemon-wide default of the same name. */
export interface RouteOptions {
  readonly connectTimeoutMs?: number
  readonly idleTimeoutMs?: number
  readonly highWaterMarkBytes?: number
  readonly textPolicy?: TextPolicy
  /** Tunnels open at once for this token (or route); more are refused with 4429. */
  readonly maxConnections?: number
  /** Payload bytes (both directions together) one tunnel may carry; beyond it, close 4413. */
  readonly maxBytes?: number
  /** The longest a tunnel may live; at its end, close 4408 "session time limit reached". */
  readonly maxDurationMs?: number
  /**
   * TLS settings of a `tls://` route (files, server name, insecure). Only the operator's config file sets
   * them: a token can ask for `tls://` but never names a file.
   */
  readonly tls?: TargetTlsSpec
  /**
   * The daemon logs in to the target for the client (docs/auth.md). Only the operator's config file sets
   * it: a token can name a route with a login, never carry a password.
   */
  readonly login?: LoginSpec
}

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
  'maxDuration',
  'tls',
  'login',
]

/**
 * Parses the config file's `routes` mapping: `name → { target, tokens?, connectTimeout?, idleTimeout?,
 * highWaterMark?, text?, maxConnections?, maxBytes?, tls?, login? }` (`tls` only with a `tls://` target).
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
      options: withLogin(
        at,
        withTls(at, target, parseRouteOptions(at, fields), fields['tls'], cwd),
        fields['login'],
        cwd,
      ),
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
  if (fields['maxDuration'] !== undefined)
    options.maxDurationMs = field(at, 'maxDuration', fields['maxDuration'], parseSeconds)
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

/** Adds a route's `login` mapping (a file path only: targets/login/passwords.ts reads it). */
function withLogin(
  at: string,
  options: RouteOptions,
  value: unknown,
  cwd: string | undefined,
): RouteOptions {
  if (value === undefined) return options
  const login = field(at, 'login', value, (v) => parseLoginSpec(v, cwd))
  return Object.freeze({ ...options, login })
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

/** The key a token is stored under: its SHA-256, so lookups never compare the secret itself. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
