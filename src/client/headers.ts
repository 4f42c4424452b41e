/**
 * @module client/headers
 * The extra request headers of `gangway client`: `--origin ORIGIN` (for a daemon with `allowedOrigins`)
 * and repeated `--header NAME:VALUE` (or `--header @FILE`, one `Name: value` a line, kept out of `ps`), for
 * an authenticating proxy in front of the daemon. Checks them once, before any connection, and shows them
 * safely: log lines carry header names, never values (a header may carry a password, a cookie or a key).
 * Knows no WebSocket and no file system (the caller reads `@FILE`).
 */
import { ConfigError } from '../errors.js'

/** RFC 9110 field name (a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/**
 * What a field value may not carry: control characters (a line break would split the request: header
 * injection) and characters beyond Latin-1 (Node's HTTP client would throw on them mid-connect).
 */
const FORBIDDEN_IN_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/** Headers the WebSocket handshake itself writes: a second copy would break it or confuse the daemon. */
const HANDSHAKE_HEADERS = new Set([
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'sec-websocket-accept',
  'content-length',
  'transfer-encoding',
])

export interface ExtraHeaders {
  /** Name → value, names as the user wrote them (HTTP compares them case-insensitively). */
  readonly headers: Readonly<Record<string, string>>
  /** The Origin sent, if any (an origin is public: logs may show it). */
  readonly origin: string | undefined
}

export interface HeaderInput {
  /** `--origin`, if given. */
  readonly origin?: string | undefined
  /**
   * `--header` values in order, each `NAME:VALUE` (the `@FILE` ones already expanded to their lines), with
   * the label an error names it by (`--header #2`, `--header @/path line 3`).
   */
  readonly headers?: readonly { readonly text: string; readonly label: string }[]
  /** Whether the token travels in `Authorization` (`--token-in header` with a token). */
  readonly tokenInAuthorization: boolean
}

/**
 * @throws {ConfigError} with one line that names the option and the header's name, never its value.
 */
export function parseExtraHeaders(input: HeaderInput): ExtraHeaders {
  const headers: Record<string, string> = {}
  const seen = new Map<string, string>() // lower-case name → name as given
  let origin = input.origin === undefined ? undefined : parseOrigin(input.origin, '--origin')
  for (const { text: line, label } of input.headers ?? []) {
    const colon = line.indexOf(':')
    if (colon <= 0) {
      throw new ConfigError(`${label}: expected NAME:VALUE (such as "X-Api-Key: …")`)
    }
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (!HEADER_NAME.test(name)) {
      throw new ConfigError(
        `${label}: the part before ':' is not a header name (letters, digits, - and !#$%&'*+.^_\`|~)`,
      )
    }
    const lower = name.toLowerCase()
    if (FORBIDDEN_IN_VALUE.test(value)) {
      throw new ConfigError(
        `${label} (${name}): the value contains a line break, a control character or a character beyond Latin-1`,
      )
    }
    if (HANDSHAKE_HEADERS.has(lower)) {
      throw new ConfigError(`${label} (${name}): set by the WebSocket handshake itself`)
    }
    if (lower === 'authorization' && input.tokenInAuthorization) {
      throw new ConfigError(
        `${label} (${name}): the token already travels in Authorization; with --token-in subprotocol it leaves that header to you`,
      )
    }
    if (lower === 'origin') {
      if (input.origin !== undefined) throw new ConfigError(`${label} (Origin): --origin gives it`)
      origin = parseOrigin(value, label)
      continue
    }
    if (seen.has(lower)) {
      throw new ConfigError(`${label} (${name}): given twice (as ${seen.get(lower)!} before)`)
    }
    seen.set(lower, name)
    headers[name] = value
  }
  if (origin !== undefined) headers['Origin'] = origin
  return { headers, origin }
}

/** The lines of a `--header @FILE`: one `Name: value` a line; blank lines and `#` comments skipped. */
export function headerFileLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

/** What a log line may show of the extra headers: the names, never the values. */
export function headerNames(extra: ExtraHeaders): string[] | undefined {
  const names = Object.keys(extra.headers).filter((name) => name !== 'Origin')
  return names.length === 0 ? undefined : names
}

/**
 * An origin as a browser sends it: `scheme://host[:port]` (lower-cased, default port dropped), or `null`.
 * @throws {ConfigError} for anything else (a path, a query, credentials, not a URL).
 */
function parseOrigin(text: string, label: string): string {
  if (text === 'null') return text
  const expected = `${label}: expected an origin such as https://app.example.com (scheme://host[:port], no path), got ${JSON.stringify(text)}`
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError(expected)
  }
  if (
    url.origin === 'null' ||
    url.pathname !== '/' ||
    url.search !== '' ||
    url.hash !== '' ||
    url.username !== '' ||
    url.password !== '' ||
    !/^[a-z][a-z0-9+.-]*:\/\/[^/]+\/?$/i.test(text)
  ) {
    throw new ConfigError(expected)
  }
  return url.origin
}
