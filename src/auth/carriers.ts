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
  const found = queryOf(url)?.params.find((param) => param.name === name)
  return found === undefined || found.value === '' ? undefined : found.value
}

/** One `&`-separated parameter of a query: as written, and as URLSearchParams decodes it. */
interface QueryParam {
  readonly raw: string
  readonly name: string
  readonly value: string
}

interface Query {
  /** The request target up to and including the first `?`, plus the one `?` URLSearchParams drops. */
  readonly head: string
  readonly params: readonly QueryParam[]
}

/**
 * The query of a request target, as every reader of it (the token carrier, `?route=`, `?address=`) and
 * the redaction see it: one parse, so that what is redacted is exactly what is read. It is everything
 * after the first `?` (a `#` is not special: a request target has no fragment, and URLSearchParams reads
 * on), minus one leading `?` (URLSearchParams drops it: `/??token=…` carries a token), split at every `&`;
 * each parameter's name and value are decoded by URLSearchParams itself (`+`, percent escapes, bad UTF-8).
 */
function queryOf(url: string | undefined): Query | undefined {
  if (url === undefined) return undefined
  const at = url.indexOf('?')
  if (at === -1) return undefined
  const query = url.slice(at + 1)
  const skip = query.startsWith('?') ? 1 : 0
  const params: QueryParam[] = []
  for (const raw of query.slice(skip).split('&')) {
    // A leading `&` keeps URLSearchParams from dropping a `?` that belongs to this parameter's name.
    const [entry] = new URLSearchParams(`&${raw}`)
    if (entry !== undefined) params.push({ raw, name: entry[0], value: entry[1] })
    else params.push({ raw, name: '', value: '' })
  }
  return { head: url.slice(0, at + 1 + skip), params }
}

function percentDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text)
  } catch {
    return undefined
  }
}

/**
 * The request target with the value of every `token` parameter replaced, fit for a log line. It uses the
 * parse the carrier reads the token with (`queryOf`), so no spelling can be read as a token and logged in
 * clear: encoded names (`%74oken`), a second `?` (`/??token=`), a `#` before it, duplicates. Beyond what
 * is read, a name in another case (`TOKEN=`) or behind punctuation (`#token=`), and a `;token=` inside a
 * parameter (a reader that splits at `;`), are redacted too.
 */
export function redactUrl(url: string | undefined): string | undefined {
  const query = queryOf(url)
  if (query === undefined) return url
  const params = query.params.map(({ raw, name }) => {
    if (isTokenLike(name) && raw.includes('=')) return `${raw.split('=', 1)[0]!}=[redacted]`
    const segments = raw.split(';')
    const first = segments.findIndex((segment) => isTokenName(segment))
    if (first === -1) return raw
    const kept = segments.slice(0, first).concat(segments[first]!.split('=', 1)[0]!)
    return `${kept.join(';')}=[redacted]`
  })
  return `${query.head}${params.join('&')}`
}

function isTokenName(segment: string): boolean {
  const eq = segment.indexOf('=')
  if (eq === -1) return false
  const [entry] = new URLSearchParams(`&${segment.slice(0, eq)}`)
  return entry !== undefined && isTokenLike(entry[0])
}

/**
 * `token` in any case, also behind punctuation (`#token`, `?token`, `;token`, `&token` encoded): not read
 * as a token, but plainly meant as one by whoever wrote it.
 */
function isTokenLike(name: string): boolean {
  return name.replace(/^[^0-9A-Za-z]+/, '').toLowerCase() === 'token'
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
