/**
 * @module gateway/client-address
 * Who the client really is. Behind a load balancer the socket's peer is the balancer: its PROXY protocol
 * header (when the listener expects one) or, from a trusted proxy only, `Forwarded`/`X-Forwarded-For`
 * name the client instead. Headers from anyone else are ignored, so a client cannot forge its address.
 * Knows nothing of tokens or targets.
 */
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { ConfigError } from '../errors.js'
import { unmap, type ProxyAddresses } from './proxy-protocol.js'

/** The addresses a PROXY header gave for a connection, attached to its socket by the server. */
export const kProxyAddresses = Symbol('gangway.proxyAddresses')

export type ProxiedSocket = Socket & { [kProxyAddresses]?: ProxyAddresses }

/** Parses `--trust-proxy`: comma-separated addresses and CIDR blocks (`10.0.0.0/8, ::1`). */
export function parseTrustedProxies(text: string | undefined): BlockList | undefined {
  if (text === undefined || text.trim() === '') return undefined
  const list = new BlockList()
  for (const raw of text.split(',')) {
    const item = raw.trim()
    const [address = '', bits] = item.split('/')
    const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined
    if (family === undefined) {
      throw new ConfigError(
        `--trust-proxy: ${JSON.stringify(item)} is not an IP address or CIDR block`,
      )
    }
    if (bits === undefined) {
      list.addAddress(address, family)
      continue
    }
    const prefix = Number(bits)
    if (!/^\d+$/.test(bits) || prefix > (family === 'ipv4' ? 32 : 128)) {
      throw new ConfigError(`--trust-proxy: ${JSON.stringify(item)} has a bad prefix length`)
    }
    list.addSubnet(address, prefix, family)
  }
  return list
}

export interface ClientEndpoint {
  address: string
  /** Undefined when only a forwarding header named the client (it carries no reliable port). */
  port: number | undefined
}

/** Resolves a request's real client from PROXY data, then trusted forwarding headers. */
export function createClientResolver(trusted: BlockList | undefined) {
  return function clientOf(req: IncomingMessage): ClientEndpoint {
    const socket = req.socket as ProxiedSocket
    const proxied = socket[kProxyAddresses]
    let peer: ClientEndpoint =
      proxied === undefined
        ? { address: unmap(socket.remoteAddress ?? 'unix'), port: socket.remotePort }
        : { address: unmap(proxied.sourceAddress), port: proxied.sourcePort }
    if (trusted === undefined || !isTrusted(trusted, peer.address)) return peer
    // Walk the chain from the nearest hop outwards; the first address we do not trust is the client.
    const chain = forwardedChain(req)
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = chain[i]!
      peer = { address: hop, port: undefined }
      if (!isTrusted(trusted, hop)) break
    }
    return peer
  }
}

function isTrusted(list: BlockList, address: string): boolean {
  if (isIPv4(address)) return list.check(address, 'ipv4')
  if (isIPv6(address)) return list.check(address, 'ipv6')
  return false
}

/** Client addresses named by `Forwarded` (RFC 7239, preferred) or `X-Forwarded-For`, nearest last. */
function forwardedChain(req: IncomingMessage): string[] {
  const forwarded = req.headers['forwarded']
  if (forwarded !== undefined) {
    const hops: string[] = []
    for (const element of forwarded.split(',')) {
      const match = /(?:^|;)\s*for=("?)([^";,]*)\1/i.exec(element)
      const value = match?.[2]?.trim()
      if (value !== undefined) hops.push(stripPort(value))
    }
    return hops.filter(isAddress)
  }
  const xff = req.headers['x-forwarded-for']
  const text = Array.isArray(xff) ? xff.join(',') : xff
  if (text === undefined) return []
  return text
    .split(',')
    .map((s) => stripPort(s.trim()))
    .filter(isAddress)
}

/** `[2001:db8::1]:4711` → `2001:db8::1`; `192.0.2.1:80` → `192.0.2.1`. */
function stripPort(value: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value)
  if (bracketed) return bracketed[1]!
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(value)
  return v4 ? v4[1]! : value
}

function isAddress(value: string): boolean {
  return isIP(value) !== 0
}

/** `ip:port`, IPv6 bracketed; just the address when the port is unknown. */
export function formatEndpoint(endpoint: ClientEndpoint): string {
  const { address, port } = endpoint
  const host = address.includes(':') ? `[${address}]` : address
  return port === undefined ? host : `${host}:${port}`
}
