/**
 * @module gateway/client-address
 * Who the client really is, by one rule. Behind a load balancer the socket's peer is the balancer: its
 * PROXY protocol header (when the listener expects one) names the client instead. Then, only when that
 * peer is a trusted proxy (`--trust-proxy`), the one header the operator named (`--trust-proxy-header`,
 * default X-Forwarded-For; RFC 7239 `Forwarded` only when chosen) is walked from its right end, past the
 * trusted proxies: the first address that is not one is the client. Every address is checked to be a plain
 * IP (no zone id) before it is used; an entry that is not one ends the walk. Headers from anyone else are
 * ignored, so a client cannot forge its address. Knows nothing of tokens or tunnels.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { ConfigError } from '../errors.js'
import { plainIp, type ProxyAddresses } from './proxy-protocol.js'

/** The addresses a PROXY header gave for a connection, attached to its socket by the server. */
export const kProxyAddresses = Symbol('gangway.proxyAddresses')

export type ProxiedSocket = Socket & { [kProxyAddresses]?: ProxyAddresses }

/** The address shown (and counted) for the peers of a unix-socket listener, which have none. */
export const UNIX_PEER = 'unix'

/** The proxies whose forwarding header is believed (`--trust-proxy`). */
export interface TrustedProxies {
  readonly addresses: BlockList
  /** The peers of a unix-socket listener (`unix`, or `loopback`): a proxy on this host. */
  readonly unix: boolean
}

/**
 * Parses `--trust-proxy`: comma-separated addresses and CIDR blocks (`10.0.0.0/8, ::1`), `unix` (the peers
 * of a unix-socket listener, as nginx's `set_real_ip_from unix:`) and `loopback` (127.0.0.0/8, ::1 and
 * `unix`).
 */
export function parseTrustedProxies(text: string | undefined): TrustedProxies | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const addresses = new BlockList()
  let unix = false
  for (const raw of text.split(',')) {
    const item = raw.trim()
    const word = item.toLowerCase()
    if (word === 'unix' || word === 'loopback') {
      unix = true
      if (word === 'loopback') {
        addresses.addSubnet('127.0.0.0', 8, 'ipv4')
        addresses.addAddress('::1', 'ipv6')
      }
      continue
    }
    const [address = '', bits] = item.split('/')
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined
    if (family === undefined || plainIp(address) === undefined) {
      throw new ConfigError(
        `--trust-proxy: ${JSON.stringify(item)} is not an IP address, a CIDR block, "unix" or "loopback"`,
      )
    }
    if (bits === undefined) {
      addresses.addAddress(address, family)
      continue
    }
    const prefix = Number(bits)
    if (!/^\d+$/.test(bits) || prefix > (family === 'ipv4' ? 32 : 128)) {
      throw new ConfigError(`--trust-proxy: ${JSON.stringify(item)} has a bad prefix length`)
    }
    addresses.addSubnet(address, prefix, family)
  }
  return { addresses, unix }
}

/** A header field name (RFC 9110 token). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Parses `--trust-proxy-header`: the header the trusted proxy names the client in, lower-cased.
 * `Forwarded` is read as RFC 7239 (`for=` parameters); any other header as a comma-separated list of
 * addresses, like X-Forwarded-For (nginx's `real_ip_header`: X-Real-IP, CF-Connecting-IP, …).
 */
export function parseClientHeader(text: string): string {
  const name = text.trim()
  if (!FIELD_NAME.test(name)) {
    throw new ConfigError(`--trust-proxy-header: ${JSON.stringify(text)} is not a header name`)
  }
  return name.toLowerCase()
}

export interface ClientEndpoint {
  address: string
  /** Undefined when only a forwarding header named the client (it carries no reliable port). */
  port: number | undefined
}

/** Resolves a request's real client from PROXY data, then the trusted proxy's forwarding header. */
export function createClientResolver(trusted: TrustedProxies | undefined, header: string) {
  const readChain = header === 'forwarded' ? forwardedFor : addressList
  return function clientOf(req: IncomingMessage): ClientEndpoint {
    const socket = req.socket as ProxiedSocket
    const proxied = socket[kProxyAddresses]
    let peer = proxied === undefined ? socketPeer(socket) : proxiedPeer(proxied)
    if (trusted === undefined || !isTrusted(trusted, peer.address)) return peer
    // From the nearest hop outwards: the first address that is not a trusted proxy is the client. Only
    // the right end of the header was written by proxies we trust; whatever is left of it, the client sent.
    const chain = readChain(req.headers[header])
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = plainIp(stripPort(chain[i]!))
      if (hop === undefined) break // not an address: the nearest proxy that gave one stays the client
      peer = { address: hop, port: undefined }
      if (!isTrusted(trusted, hop)) break
    }
    return peer
  }
}

function socketPeer(socket: Socket): ClientEndpoint {
  const address = socket.remoteAddress
  if (address === undefined) return { address: UNIX_PEER, port: undefined } // a unix-socket listener
  return { address: plainIp(address) ?? address, port: socket.remotePort }
}

function proxiedPeer(proxied: ProxyAddresses): ClientEndpoint {
  // The PROXY parser accepts plain IPs only; canonical spelling, so that one client is one key.
  return {
    address: plainIp(proxied.sourceAddress) ?? proxied.sourceAddress,
    port: proxied.sourcePort,
  }
}

function isTrusted(trusted: TrustedProxies, address: string): boolean {
  if (address === UNIX_PEER) return trusted.unix
  if (isIPv4(address)) return trusted.addresses.check(address, 'ipv4')
  if (isIPv6(address)) return trusted.addresses.check(address, 'ipv6')
  return false
}

/** `X-Forwarded-For`-style: comma-separated entries (repeated header lines arrive joined by Node). */
function addressList(value: string | string[] | undefined): string[] {
  const text = Array.isArray(value) ? value.join(',') : value
  if (text === undefined) return []
  return text.split(',').map((entry) => entry.trim())
}

/** RFC 7239: the `for=` value of each element, quoted strings unescaped; an element without one is `""`. */
function forwardedFor(value: string | string[] | undefined): string[] {
  const text = Array.isArray(value) ? value.join(',') : value
  if (text === undefined) return []
  return splitOutsideQuotes(text, ',').map((element) => {
    for (const pair of splitOutsideQuotes(element, ';')) {
      const eq = pair.indexOf('=')
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue
      const raw = pair.slice(eq + 1).trim()
      return raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2
        ? raw.slice(1, -1).replace(/\\(.)/g, '$1')
        : raw
    }
    return ''
  })
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted && c === '\\') i++
    else if (c === '"') quoted = !quoted
    else if (!quoted && c === separator) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts
}

/** `[2001:db8::1]:4711` → `2001:db8::1`; `192.0.2.1:80` → `192.0.2.1`. */
function stripPort(value: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value)
  if (bracketed) return bracketed[1]!
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(value)
  return v4 ? v4[1]! : value
}

/** `ip:port`, IPv6 bracketed; just the address when the port is unknown. */
export function formatEndpoint(endpoint: ClientEndpoint): string {
  const { address, port } = endpoint
  const host = address.includes(':') ? `[${address}]` : address
  return port === undefined ? host : `${host}:${port}`
}
