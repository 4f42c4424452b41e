/**
 * @module auth/carriers
 * Where a token travels, and in which order the carriers are read (pure: headers and URL in, token out).
 * Precedence, first present wins: 1. `Sec-WebSocket-Protocol` entry `gangway.bearer.<base64url>`,
 * 2. `Authorization: Bearer`, 3. the token cookie, 4. `?token=` in the query, 5. the `Host` header (only with
 * `--host-token`). Also `redactUrl` (no `token=` value in any log line) and `safeEqual` (secrets are
 * compared in constant time). Never logs; never decides whether a token is valid.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { SUBPROTOCOL_BEARER_PREFIX } from '../protocol.js'

export type TokenCarrier = 'subprotocol' | 'authorization' | 'cookie' | 'query' | 'host'

/** The carriers in precedence order. */
export const CARRIERS: readonly TokenCarrier[] = [
  'subprotocol',
  'authorization',
  'cookie',
  'query',
  'host',
]

export interface TokenSources {
  /** Cookie name read for a token; undefined = the cookie carrier is off. */
  readonly cookieName: string | undefined
  /** websockify's `--host-token`: the Host header up to its port is the token. */
  readonly hostToken: boolean
}

/** A token as found. `token` is undefined when the carrier was present but malformed (→ 4401). */
export interface FoundToken {
  readonly carrier: TokenCarrier
  readonly token: string | undefined
}

interface RequestLike {
  readonly headers: IncomingHttpHeaders
  readonly url?: string | undefined
}

/** Tokens are text a person or a program wrote: printable, no whitespace, bounded. */
const MAX_TOKEN_LENGTH = 8192
const TOKEN_TEXT = /^[\x21-\x7e]+$/
const BASE64URL = /^[A-Za-z0-9_-]+$/

/** The first token carrier present in the request, or undefined when none is. */
export function extractToken(req: RequestLike, sources: TokenSources): FoundToken | undefined {
  for (const carrier of CARRIERS) {
    const found = read(carrier, req, sources)
    if (found !== undefined) return { carrier, token: found === null ? undefined : found }
  }
  return undefined
}

/** undefined: carrier absent; null: present but malformed; a string: the token. */
function read(
  carrier: TokenCarrier,
  req: RequestLike,
  sources: TokenSources,
): string | null | undefined {
  switch (carrier) {
    case 'subprotocol':
      return fromSubprotocol(req.headers['sec-websocket-protocol'])
    case 'authorization':
      return fromAuthorization(req.headers.authorization)
    case 'cookie':
      return sources.cookieName === undefined
        ? undefined
        : fromCookie(req.headers.cookie, sources.cookieName)
    case 'query':
      return fromQuery(req.url)
    case 'host':
      return sources.hostToken ? fromHost(req.headers.host) : undefined
  }
}

function checked(token: string): string | null {
  return token.length <= MAX_TOKEN_LENGTH && TOKEN_TEXT.test(token) ? token : null
}

function fromSubprotocol(header: string | undefined): string | null | undefined {
  if (header === undefined) return undefined
  for (const entry of header.split(',')) {
    const name = entry.trim()
    if (!name.startsWith(SUBPROTOCOL_BEARER_PREFIX)) continue
    const encoded = name.slice(SUBPROTOCOL_BEARER_PREFIX.length)
    if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) return null
    return checked(Buffer.from(encoded, 'base64url').toString('utf8'))
  }
  return undefined
}

function fromAuthorization(header: string | undefined): string | null | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  if (match?.[1] === undefined) return /^Bearer\b/i.test(header) ? null : undefined
  return checked(match[1])
}

function fromCookie(header: string | undefined, name: string): string | null | undefined {
  if (header === undefined) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    let value = pair.slice(eq + 1).trim()
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1)
    if (value === '') return undefined
    return checked(percentDecode(value) ?? '')
  }
  return undefined
}

/** websockify's rule: the first `token` parameter, percent-decoded, trailing newlines removed; empty = absent. */
function fromQuery(url: string | undefined): string | null | undefined {
  const value = queryParameter(url, 'token')?.replace(/[\r\n]+$/, '')
  return value === undefined || value === '' ? undefined : checked(value)
}

/** websockify's `--host-token`: the Host header up to its first colon (an IPv6 literal has no token). */
function fromHost(header: string | undefined): string | null | undefined {
  if (header === undefined || header === '' || header.startsWith('[')) return undefined
  const colon = header.indexOf(':')
  const host = colon === -1 ? header : header.slice(0, colon)
  return host === '' ? undefined : checked(host)
}

/** A query parameter (`token`; client-named targets: `address`, `target`; `route`); empty = absent. */
export function queryParameter(url: string | undefined, name: string): string | undefined {
  const query = queryOf(url)
  if (query === undefined) return undefined
  const value = new URLSearchParams(query).get(name)
  return value === null || value === '' ? undefined : value
}

function queryOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const at = url.indexOf('?')
  return at === -1 ? undefined : url.slice(at + 1)
}

function percentDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/**
 * The request target with every `token` parameter's value replaced, fit for a log line. As the query is
 * read (URLSearchParams): parameters end at `&` only (a `;` belongs to the value), and a name is percent-
 * decoded (`%74oken`, `tok%65n` are `token`), in any case. A `;token=` inside a parameter is redacted too.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  const at = url.indexOf('?')
  if (at === -1) return url
  const hash = url.indexOf('#', at)
  const end = hash === -1 ? url.length : hash
  const pairs = url
    .slice(at + 1, end)
    .split('&')
    .map((pair) => {
      const segments = pair.split(';')
      const first = segments.findIndex((segment) => isTokenName(segment))
      if (first === -1) return pair
      const kept = segments.slice(0, first).concat(segments[first]!.split('=', 1)[0]!)
      return `${kept.join(';')}=[redacted]`
    })
  return `${url.slice(0, at + 1)}${pairs.join('&')}${url.slice(end)}`
}

function isTokenName(segment: string): boolean {
  const eq = segment.indexOf('=')
  if (eq === -1) return false
  const name = segment.slice(0, eq).replace(/\+/g, ' ')
  return (percentDecode(name) ?? name).toLowerCase() === 'token'
}

/** Compares two secrets in constant time (hashed first, so lengths leak nothing either). */
export function safeEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest()
  const right = createHash('sha256').update(b).digest()
  return timingSafeEqual(left, right)
}

/** Encodes a token as the `Sec-WebSocket-Protocol` entry a browser client offers. */
export function bearerSubprotocol(token: string): string {
  return SUBPROTOCOL_BEARER_PREFIX + Buffer.from(token, 'utf8').toString('base64url')
}
