/**
 * @module targets/http-api
 * An HTTP token API (websockify's BaseTokenAPI / JSONTokenApi, done right): `GET` the URL template with the
 * token URL-encoded in place of `%s` (or `{token}`), with a timeout and kept-alive connections. A 2xx
 * answer is a hit: a JSON body `{"target": "host:port"}` or `{"host": …, "port": …}`, or a text body
 * `host:port`. 404, 401, 403 and 410 mean "no such token". Anything else (5xx, a timeout, a refused
 * connection, an unreadable body) is an outage: 4503, never 4401. Answers are cached briefly, both ways.
 * Knows nothing of WebSockets, carriers or policy (targets/resolver.ts).
 */
import http from 'node:http'
import https from 'node:https'
import { parseTarget } from '../config/address.js'
import { ConfigError } from '../errors.js'
import { hostPortFields, type Resolution, type TargetResolver } from './resolver.js'

const MAX_BODY_BYTES = 16 * 1024
const MAX_CACHE_ENTRIES = 10_000
const UNKNOWN_STATUSES = new Set([401, 403, 404, 410])

export interface HttpApiOptions {
  /** URL template containing `%s` or `{token}`. */
  readonly url: string
  readonly timeoutMs: number
  /** How long answers (hits and misses) are reused; 0 = no cache. */
  readonly cacheMs: number
  readonly now?: () => number
}

/** @throws {ConfigError} when the template is not an http(s) URL with a token placeholder. */
export function httpTokenApi(options: HttpApiOptions): TargetResolver {
  const template = options.url
  if (!template.includes('%s') && !template.includes('{token}')) {
    throw new ConfigError(`tokenApi: the URL needs a %s or {token} placeholder: ${template}`)
  }
  const probe = new URL(template.replace('%s', 'x').replace('{token}', 'x'))
  if (probe.protocol !== 'http:' && probe.protocol !== 'https:') {
    throw new ConfigError('tokenApi: expected an http(s) URL')
  }
  const client = probe.protocol === 'https:' ? https : http
  const agent = new client.Agent({ keepAlive: true, maxSockets: 64 })
  const now = options.now ?? Date.now
  const cache = new Map<string, { until: number; answer: Resolution | null }>()

  function fetchTarget(token: string): Promise<Resolution | null> {
    const encoded = encodeURIComponent(token)
    const url = template.replace('%s', encoded).replace('{token}', encoded)
    return new Promise((resolve, reject) => {
      const request = client.get(
        url,
        { agent, timeout: options.timeoutMs },
        function apiOnResponse(res) {
          const status = res.statusCode ?? 0
          const chunks: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            if (size > MAX_BODY_BYTES) res.destroy(new Error('token API answer too large'))
            else chunks.push(chunk)
          })
          res.on('error', reject)
          res.on('end', () => {
            if (UNKNOWN_STATUSES.has(status)) return resolve(null)
            if (status < 200 || status > 299)
              return reject(new Error(`token API answered ${status}`))
            try {
              resolve(parseAnswer(Buffer.concat(chunks).toString('utf8')))
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)))
            }
          })
        },
      )
      request.on('timeout', () =>
        request.destroy(new Error(`token API timed out after ${options.timeoutMs} ms`)),
      )
      request.on('error', reject)
    })
  }

  return {
    name: 'token-api',
    async resolve(token) {
      const key = token
      const cached = cache.get(key)
      if (cached !== undefined && cached.until > now()) return cached.answer
      const answer = await fetchTarget(token)
      if (options.cacheMs > 0) {
        cache.delete(key)
        cache.set(key, { until: now() + options.cacheMs, answer })
        if (cache.size > MAX_CACHE_ENTRIES) {
          const oldest = cache.keys().next().value
          if (oldest !== undefined) cache.delete(oldest)
        }
      }
      return answer
    },
    close() {
      agent.destroy()
      return Promise.resolve()
    },
  }
}

function parseAnswer(body: string): Resolution {
  const text = body.trim()
  let target: string | undefined = text
  let expiresAt: number | undefined
  if (text.startsWith('{')) {
    const json = JSON.parse(text) as Record<string, unknown>
    target = typeof json['target'] === 'string' ? json['target'] : hostPortFields(json)
    if (target === undefined) throw new Error('token API answer has no target')
    expiresAt = parseExpiresAt(json['expiresAt'])
  }
  return {
    target: parseTarget(target),
    trusted: false,
    label: 'token-api',
    ...(expiresAt === undefined ? {} : { expiresAt }),
  }
}

/** `expiresAt`: seconds since the epoch (as JWT `exp`) or an ISO 8601 time; anything else is ignored. */
function parseExpiresAt(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value * 1000
  if (typeof value === 'string') {
    const ms = Date.parse(value)
    if (Number.isFinite(ms)) return ms
  }
  return undefined
}
