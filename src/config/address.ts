/**
 * @module config/address
 * The LISTEN and TARGET address grammar shared by the positionals and the config file's `listen`/`target`
 * keys (websockify-compatible: `6080`, `127.0.0.1:6080`, `[::1]:5900`, `db.internal:5432`, plus
 * `unix:/path`). Pure string work: no DNS, no file system; errors are one-line `ConfigError`s.
 */
import { isIPv4, isIPv6 } from 'node:net'
import { resolve } from 'node:path'
import { ConfigError } from '../errors.js'

/** Where the daemon listens. */
export type ListenAddress =
  { kind: 'tcp'; host: string | undefined; port: number } | { kind: 'unix'; path: string }

/** What a tunnel dials. */
export type Target =
  { kind: 'tcp'; host: string; port: number; tls?: true } | { kind: 'unix'; path: string }

export interface ParseAddressOptions {
  /** How the value is named in error messages (default `LISTEN` / `TARGET`). */
  label?: string
  /** Directory that relative `unix:` paths resolve against (default: `process.cwd()`). */
  cwd?: string
}

const UNIX_PREFIX = 'unix:'
/** A TCP target reached over TLS (target-tls.ts). */
const TLS_PREFIX = 'tls://'
const LISTEN_EXPECTED = 'expected [host:]port or unix:/path'
const TARGET_EXPECTED = 'expected host:port or unix:/path'

/** One DNS label: letters, digits, `-` (not at either end) and `_` (docker and k8s service names use it). */
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`)
const MAX_HOSTNAME_LENGTH = 253

/**
 * Parses a listen address. A bare port listens on all interfaces (`host` undefined, as websockify does);
 * port 0 asks the OS for an ephemeral port.
 * @throws {ConfigError} naming the label, the text and what is wrong with it.
 * @example parseListen('[::1]:6080') // { kind: 'tcp', host: '::1', port: 6080 }
 */
export function parseListen(text: string, options: ParseAddressOptions = {}): ListenAddress {
  const label = options.label ?? 'LISTEN'
  const fail = failure(label, text, LISTEN_EXPECTED)
  if (text.startsWith(UNIX_PREFIX)) return parseUnix(text, fail, options.cwd)
  if (/^\d+$/.test(text)) return { kind: 'tcp', host: undefined, port: parsePort(text, 0, fail) }
  const { host, port } = splitHostPort(text, fail)
  if (host === '')
    fail('has an empty host', `write just the port, ${port}, to listen on all interfaces`)
  return { kind: 'tcp', host, port: parsePort(port, 0, fail) }
}

/** `parseListen` for a listener that is not for the world: a bare port means loopback (127.0.0.1) only. */
export function parseLoopbackListen(
  text: string,
  options: ParseAddressOptions = {},
): ListenAddress {
  const parsed = parseListen(text, options)
  if (parsed.kind === 'tcp' && parsed.host === undefined) return { ...parsed, host: '127.0.0.1' }
  return parsed
}

/**
 * Parses a target address: `host:port` (hostname, IPv4 or bracketed IPv6), the same behind `tls://` (the
 * tunnel then speaks TLS to the target), or `unix:/path`.
 * @throws {ConfigError} naming the label, the text and what is wrong with it.
 * @example parseTarget('localhost:5900') // { kind: 'tcp', host: 'localhost', port: 5900 }
 * @example parseTarget('tls://[::1]:6380') // { kind: 'tcp', host: '::1', port: 6380, tls: true }
 */
export function parseTarget(text: string, options: ParseAddressOptions = {}): Target {
  const label = options.label ?? 'TARGET'
  const fail = failure(label, text, TARGET_EXPECTED)
  if (text.startsWith(UNIX_PREFIX)) return parseUnix(text, fail, options.cwd)
  const secure = text.startsWith(TLS_PREFIX)
  const address = secure ? text.slice(TLS_PREFIX.length) : text
  if (secure && address.startsWith(UNIX_PREFIX))
    fail('is TLS over a unix socket', 'tls:// takes host:port')
  if (/^\d+$/.test(address)) fail('has no host')
  const { host, port } = splitHostPort(address, fail)
  if (host === '') fail('has an empty host')
  const target = { kind: 'tcp', host, port: parsePort(port, 1, fail) } as const
  return secure ? { ...target, tls: true } : target
}

/**
 * Formats an address the way the parsers read it back: `6080`, `127.0.0.1:6080`, `[::1]:6080`,
 * `tls://db.internal:5432`, `unix:/run/g.sock`.
 */
export function formatAddress(address: ListenAddress | Target): string {
  if (address.kind === 'unix') return `${UNIX_PREFIX}${address.path}`
  if (address.host === undefined) return String(address.port)
  const host = address.host.includes(':') ? `[${address.host}]` : address.host
  const scheme = 'tls' in address && address.tls === true ? TLS_PREFIX : ''
  return `${scheme}${host}:${address.port}`
}

/** Throws `<label> "<text>" <problem> (<hint>)`; the hint defaults to the expected grammar. */
type Fail = (problem: string, hint?: string) => never

function failure(label: string, text: string, expected: string): Fail {
  return function fail(problem: string, hint = expected): never {
    throw new ConfigError(`${label} ${JSON.stringify(text)} ${problem} (${hint})`)
  }
}

function parseUnix(
  text: string,
  fail: Fail,
  cwd: string = process.cwd(),
): { kind: 'unix'; path: string } {
  const path = text.slice(UNIX_PREFIX.length)
  if (path === '') fail('has an empty path')
  if (path.includes('\0')) fail('has a NUL byte in its path')
  return { kind: 'unix', path: resolve(cwd, path) }
}

/** Splits `host:port` / `[v6]:port` and validates the host; the port is returned unparsed. */
function splitHostPort(text: string, fail: Fail): { host: string; port: string } {
  if (text.includes('://')) fail('has a URL scheme')
  if (text.startsWith('[')) {
    const close = text.indexOf(']')
    if (close === -1) fail('has an unclosed "["')
    const host = text.slice(1, close)
    const rest = text.slice(close + 1)
    if (!isIPv6(host)) fail(`has "${host}" in brackets, which is not an IPv6 address`)
    if (rest === '') fail('has no port')
    if (!rest.startsWith(':')) fail(`has unexpected text after "]"`)
    return { host, port: rest.slice(1) }
  }
  const colon = text.indexOf(':')
  if (colon === -1) {
    if (isHostLike(text)) fail('has no port')
    fail('is not an address')
  }
  if (text.indexOf(':', colon + 1) !== -1) {
    const last = text.lastIndexOf(':')
    const v6 = text.slice(0, last)
    const hint = isIPv6(v6) ? `write it as [${v6}]:${text.slice(last + 1)}` : 'e.g. [::1]:6080'
    fail('has more than one ":"', `an IPv6 address must be bracketed: ${hint}`)
  }
  const host = text.slice(0, colon)
  if (host !== '') checkHost(host, fail)
  return { host, port: text.slice(colon + 1) }
}

function isHostLike(text: string): boolean {
  return text.length <= MAX_HOSTNAME_LENGTH && HOSTNAME.test(text)
}

function checkHost(host: string, fail: Fail): void {
  if (isIPv4(host)) return
  if (/^[\d.]+$/.test(host)) fail(`has "${host}", which is not a valid IPv4 address`)
  if (!isHostLike(host)) fail(`has an invalid host name "${host}"`)
}

function parsePort(text: string, min: number, fail: Fail): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(port >= min && port <= 65535)) {
    if (text === '') fail('has no port')
    fail(`has an invalid port "${text}"`, `a port is a number from ${min} to 65535`)
  }
  return port
}
