/**
 * @module targets/redis
 * Tokens in Redis (`ioredis`): the key `<prefix><token>` holds the target, as text (`host:port`,
 * `[v6]:port`, `unix:/path`) or JSON (`{"target": …}` or websockify's `{"host": "h:p"}` /
 * `{"host": "h", "port": p}`, plus optional `maxConnections` and `idleTimeout`). Expiring keys expire
 * tokens; deleting a key revokes one. A Redis that does not answer is an outage (4503), never "unknown
 * token": commands fail fast instead of queueing while the connection is down.
 * Knows nothing of WebSockets, carriers or policy (targets/resolver.ts).
 */
import { Redis } from 'ioredis'
import { parseTarget } from '../config/address.js'
import { ConfigError } from '../errors.js'
import {
  hostPortFields,
  type Resolution,
  type RouteOptions,
  type TargetResolver,
} from './resolver.js'

export interface RedisOptions {
  /** `redis://[:password@]host[:port][/db]`, or websockify's `host[:port[:db[:password[:namespace]]]]`. */
  readonly source: string
  /** Key prefix (websockify's namespace becomes `namespace:`). */
  readonly prefix?: string
  readonly timeoutMs: number
}

/** @throws {ConfigError} for a source that is neither form. */
export function redisTokens(options: RedisOptions): TargetResolver {
  const { url, prefix } = parseSource(options.source, options.prefix ?? '')
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: options.timeoutMs,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
  })
  client.on('error', function redisOnError() {
    // Reported per lookup as 4503; ioredis keeps reconnecting on its own.
  })
  let connecting: Promise<void> | undefined

  async function ready(): Promise<void> {
    if (client.status === 'ready') return
    if (client.status === 'wait') connecting ??= client.connect()
    await connecting
  }

  return {
    name: 'redis',
    async resolve(token): Promise<Resolution | null> {
      await ready()
      // The key's TTL is the token's expiry: tunnels it opens end then (--session-expiry).
      const answers = await client
        .pipeline()
        .get(prefix + token)
        .pttl(prefix + token)
        .exec()
      const [getError, value] = answers?.[0] ?? [null, null]
      if (getError) throw getError
      if (typeof value !== 'string') return null
      const found = parseValue(value.trim())
      const ttl = answers?.[1]?.[1]
      if (found === null || typeof ttl !== 'number' || ttl <= 0) return found
      return { ...found, expiresAt: Date.now() + ttl }
    },
    async close() {
      client.disconnect()
      await Promise.resolve()
    },
  }
}

function parseValue(text: string): Resolution | null {
  if (!text.startsWith('{')) return asResolution(text, {})
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    return null
  }
  const options: { maxConnections?: number; idleTimeoutMs?: number } = {}
  if (typeof json['maxConnections'] === 'number' && json['maxConnections'] > 0)
    options.maxConnections = Math.floor(json['maxConnections'])
  if (typeof json['idleTimeout'] === 'number' && json['idleTimeout'] >= 0)
    options.idleTimeoutMs = Math.round(json['idleTimeout'] * 1000)
  if (typeof json['target'] === 'string') return asResolution(json['target'], options)
  const address = hostPortFields(json)
  if (address !== undefined) return asResolution(address, options)
  const host = json['host']
  if (typeof host === 'string') return asResolution(host, options) // websockify: "host": "h:p"
  return null
}

function asResolution(text: string, options: RouteOptions): Resolution | null {
  try {
    return { target: parseTarget(text), options, trusted: false, label: 'redis' }
  } catch {
    return null
  }
}

/** websockify's source string: fields split on colons, a field may be double-quoted to hold colons. */
function parseSource(source: string, prefix: string): { url: string; prefix: string } {
  if (/^rediss?:\/\//.test(source)) return { url: source, prefix }
  const fields: string[] = []
  const pattern = /"([^"]*)"|([^:]*)/y
  let at = 0
  while (at <= source.length) {
    pattern.lastIndex = at
    const match = pattern.exec(source)
    fields.push(match?.[1] ?? match?.[2] ?? '')
    at = pattern.lastIndex + 1
    if (pattern.lastIndex >= source.length) break
  }
  const [host = '', port = '', db = '', password = '', namespace = ''] = fields
  if (host === '')
    throw new ConfigError(
      `tokenRedis: expected redis://host:port/db or host[:port[:db[:password[:namespace]]]], got ${JSON.stringify(source)}`,
    )
  const auth = password === '' ? '' : `:${encodeURIComponent(password)}@`
  return {
    url: `redis://${auth}${host}:${port || '6379'}/${db || '0'}`,
    prefix: prefix || (namespace === '' ? '' : `${namespace}:`),
  }
}
