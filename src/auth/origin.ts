/**
 * @module auth/origin
 * `allowedOrigins`: which `Origin` header values may open a tunnel. Entries are exact origins
 * (`https://app.example.com`, compared case-insensitively, default ports ignored) or wildcards
 * (`https://*.example.com` matches one or more subdomain labels, never the bare domain; `*` matches any
 * origin, including none). Pure.
 */
import { ConfigError } from '../errors.js'

export interface OriginMatcher {
  /** True when `origin` (the raw header, possibly absent) is allowed. */
  allows(origin: string | undefined): boolean
  /** True when no origin list was configured. */
  readonly open: boolean
}

interface Pattern {
  scheme: string
  host: string
  port: string
  wildcard: boolean
}

/** @throws {ConfigError} when an entry is not an origin (`scheme://host[:port]`) or a wildcard origin. */
export function allowOrigins(entries: readonly string[]): OriginMatcher {
  const any = entries.includes('*')
  const patterns = entries.filter((e) => e !== '*').map(parsePattern)
  return {
    open: entries.length === 0,
    allows(origin) {
      if (any) return true
      if (origin === undefined) return false
      const parsed = parseOrigin(origin)
      if (parsed === undefined) return false
      return patterns.some((p) => matches(p, parsed))
    },
  }
}

function parsePattern(entry: string): Pattern {
  const wildcard = /^([a-z][a-z0-9+.-]*):\/\/\*\.(.+)$/i.exec(entry)
  const parsed = parseOrigin(wildcard ? `${wildcard[1]}://${wildcard[2]}` : entry)
  if (parsed === undefined || parsed.host.includes('*')) {
    throw new ConfigError(
      `allowedOrigins: expected an origin such as "https://app.example.com" or "https://*.example.com", got ${JSON.stringify(entry)}`,
    )
  }
  return { ...parsed, wildcard: wildcard !== null }
}

function parseOrigin(text: string): Omit<Pattern, 'wildcard'> | undefined {
  if (text === 'null') return undefined
  try {
    const url = new URL(text)
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '') {
      return undefined
    }
    return { scheme: url.protocol, host: url.hostname.toLowerCase(), port: url.port }
  } catch {
    return undefined
  }
}

function matches(pattern: Pattern, origin: Omit<Pattern, 'wildcard'>): boolean {
  if (pattern.scheme !== origin.scheme || pattern.port !== origin.port) return false
  if (!pattern.wildcard) return pattern.host === origin.host
  return origin.host.endsWith(`.${pattern.host}`)
}
