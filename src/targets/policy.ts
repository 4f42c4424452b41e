/**
 * @module targets/policy
 * The target policy (`--allow`, `--deny`): which targets a token that is not the operator's own config (or
 * a client naming its own target) may reach. An allow-list: a target must match an allow rule and no deny
 * rule. Names are resolved here, on the daemon, and **every** resolved address is checked; the dial then
 * uses exactly these addresses, so DNS rebinding cannot slip a second answer in. Internal addresses
 * (loopback, private, link-local incl. 169.254.169.254, unspecified, CGNAT, multicast, …) pass only when
 * an address rule (IP or CIDR) covers them or an exact (non-wildcard) hostname rule named the target.
 * Knows nothing of tokens or WebSockets.
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import type { LookupAddress } from 'node:dns'
import { realpath } from 'node:fs/promises'
import { BlockList, isIP } from 'node:net'
import { basename, dirname, join, resolve as resolvePath, sep } from 'node:path'
import type { Target } from '../config/options.js'
import { ConfigError, tunnelError } from '../errors.js'

export interface CheckedTarget {
  readonly target: Target
  /** Every address the name resolved to, each one checked; undefined for unix targets. */
  readonly addresses: readonly LookupAddress[] | undefined
}

export interface TargetPolicy {
  /**
   * Resolves and checks a target.
   * @throws {TunnelError} ERR_TARGET_DENIED (4403) when a rule or a default range forbids it,
   * ERR_TARGET_UNREACHABLE (4503) when the name does not resolve.
   */
  check(target: Target, options: { timeoutMs: number }): Promise<CheckedTarget>
}

interface PortRange {
  from: number
  to: number
}

type Rule =
  | { kind: 'any'; ports: PortRange | undefined; text: string }
  | { kind: 'name'; name: string; wildcard: boolean; ports: PortRange | undefined; text: string }
  | { kind: 'address'; block: BlockList; ports: PortRange | undefined; text: string }
  | { kind: 'unix'; dir: string; text: string }

/** Ranges no client-influenced target reaches unless a rule names them (IANA special-purpose registries). */
const INTERNAL = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback, and deprecated IPv4-compatible addresses (::127.0.0.1)
  ['::ffff:0:0:0', 96], // IPv4-translated (RFC 2765): ::ffff:0:7f00:1 embeds 127.0.0.1
  ['64:ff9b::', 96], // NAT64: reaches IPv4 space
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  INTERNAL.addSubnet(net, prefix, 'ipv6')
}

const NAME_PATTERN =
  /^(\*\.)?([a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/

/**
 * Parses one rule: `HOST[:PORTS]`, `*.domain[:PORTS]`, `*[:PORTS]`, `IP[:PORTS]`, `CIDR[:PORTS]`,
 * `[IPv6 or IPv6 CIDR][:PORTS]` or `unix:/dir`. PORTS is `N`, `N-M` or `*` (the default).
 * @throws {ConfigError} `<label>: …` naming the rule.
 */
export function parseRule(text: string, label: string): Rule {
  const bad = (why: string): never => {
    throw new ConfigError(`${label}: ${why} in rule ${JSON.stringify(text)}`)
  }
  if (text.startsWith('unix:')) {
    const dir = text.slice(5)
    if (!dir.startsWith('/')) bad('a unix rule needs an absolute directory')
    return { kind: 'unix', dir: resolvePath(dir), text }
  }
  let host: string
  let portText: string | undefined
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(text)
  if (bracketed) {
    host = bracketed[1] ?? ''
    portText = bracketed[2]
  } else {
    const colons = text.split(':').length - 1
    if (colons > 1) bad('write IPv6 addresses in brackets')
    ;[host = '', portText] = text.split(':')
  }
  const ports = portText === undefined || portText === '*' ? undefined : parsePorts(portText, bad)
  if (host === '*') return { kind: 'any', ports, text }
  const [address, prefixText] = host.split('/')
  const family = isIP(address ?? '')
  if (family !== 0 && address !== undefined) {
    const type = family === 4 ? 'ipv4' : 'ipv6'
    const block = new BlockList()
    if (prefixText === undefined) block.addAddress(address, type)
    else {
      const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1
      if (prefix < 0 || prefix > (family === 4 ? 32 : 128)) bad('bad CIDR prefix')
      block.addSubnet(address, prefix, type)
    }
    return { kind: 'address', block, ports, text }
  }
  if (bracketed || prefixText !== undefined) bad('not an IP address or CIDR')
  const name = host.toLowerCase().replace(/\.$/, '')
  if (!NAME_PATTERN.test(name)) bad('not a hostname, *.domain, IP address or CIDR')
  const wildcard = name.startsWith('*.')
  return { kind: 'name', name: wildcard ? name.slice(1) : name, wildcard, ports, text }
}

function parsePorts(text: string, bad: (why: string) => never): PortRange {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text)
  const from = Number(match?.[1] ?? 0)
  const to = match?.[2] === undefined ? from : Number(match[2])
  if (!match || from < 1 || to > 65535 || to < from) bad('ports must be N or N-M within 1-65535')
  return { from, to }
}

function portMatches(ports: PortRange | undefined, port: number): boolean {
  return ports === undefined || (port >= ports.from && port <= ports.to)
}

function nameMatches(rule: Rule, name: string, port: number): boolean {
  if (rule.kind === 'any') return portMatches(rule.ports, port)
  if (rule.kind !== 'name' || !portMatches(rule.ports, port)) return false
  return rule.wildcard ? name.endsWith(rule.name) : name === rule.name
}

function addressMatches(rule: Rule, address: string, family: number, port: number): boolean {
  if (rule.kind !== 'address' || !portMatches(rule.ports, port)) return false
  return rule.block.check(address, family === 6 ? 'ipv6' : 'ipv4')
}

function isInDir(rule: Rule, path: string): boolean {
  return rule.kind === 'unix' && (path === rule.dir || path.startsWith(rule.dir + sep))
}

/** `::ffff:10.0.0.1` is 10.0.0.1: an IPv4-mapped address is checked (and dialled) as IPv4. */
function normalise(entry: LookupAddress): LookupAddress {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(entry.address)
  return mapped?.[1] ? { address: mapped[1], family: 4 } : entry
}

export interface PolicyOptions {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  /** Injectable resolver (tests use the system one with real names such as `localhost`). */
  readonly lookup?: (host: string) => Promise<LookupAddress[]>
}

/** @throws {ConfigError} for a rule that does not parse. */
export function createTargetPolicy(options: PolicyOptions): TargetPolicy {
  const allow = options.allow.map((text) => parseRule(text, '--allow'))
  const deny = options.deny.map((text) => parseRule(text, '--deny'))
  const lookup =
    options.lookup ?? ((host: string) => dnsLookup(host, { all: true, order: 'verbatim' }))

  async function checkUnix(path: string): Promise<CheckedTarget> {
    // Check the real location, the socket itself included: neither a symlinked directory nor a symlink in
    // place of the socket may lead out of an allowed directory. The dial then uses that real path.
    const lexical = resolvePath(path)
    const real = await realpath(lexical).catch(() => undefined)
    const shown =
      real ??
      join(await realpath(dirname(lexical)).catch(() => dirname(lexical)), basename(lexical))
    if (deny.some((r) => isInDir(r, shown)) || !allow.some((r) => isInDir(r, shown))) {
      throw tunnelError('ERR_TARGET_DENIED', `unix:${shown} is not under an allowed directory`)
    }
    // Nothing (or a dangling link) there: nothing to dial, and nothing a link made later could redirect.
    if (real === undefined) {
      throw tunnelError('ERR_TARGET_UNREACHABLE', `unix:${shown}: no such socket`)
    }
    return { target: { kind: 'unix', path: real }, addresses: undefined }
  }

  async function resolve(host: string, timeoutMs: number): Promise<LookupAddress[]> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('DNS timeout')), timeoutMs)
    })
    try {
      const found = await Promise.race([lookup(host), timeout])
      if (found.length === 0) throw new Error('no address')
      return found
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw tunnelError('ERR_TARGET_UNREACHABLE', `cannot resolve ${host}: ${why}`, err)
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    async check(target, { timeoutMs }) {
      if (target.kind === 'unix') return checkUnix(target.path)
      const { host, port } = target
      const literal = isIP(host) !== 0
      const name = host.toLowerCase().replace(/\.$/, '')
      const nameRules = (rules: Rule[]) =>
        rules.filter((r) => (literal ? r.kind === 'any' : r.kind === 'name' || r.kind === 'any'))
      const described = `${host.includes(':') ? `[${host}]` : host}:${port}`
      if (!literal && nameRules(deny).some((r) => nameMatches(r, name, port))) {
        throw tunnelError('ERR_TARGET_DENIED', `${described} matches a --deny rule`)
      }
      const byName = nameRules(allow).filter((r) => nameMatches(r, name, port))
      const nameAllowed = byName.length > 0
      const exactName = byName.some((r) => r.kind === 'name' && !r.wildcard)
      // A name that no allow rule could match, by name or by any address it might resolve to, is refused
      // before any DNS query: 4403 vs 4503 must not tell a client which internal names exist.
      const addressRuleMayMatch = allow.some(
        (r) => r.kind === 'address' && portMatches(r.ports, port),
      )
      if (!literal && !nameAllowed && !addressRuleMayMatch) {
        throw tunnelError('ERR_TARGET_DENIED', `${described} matches no --allow rule`)
      }
      const addresses = (
        literal ? [{ address: host, family: isIP(host) }] : await resolve(name, timeoutMs)
      ).map(normalise)
      for (const { address, family } of addresses) {
        const shown = literal ? described : `${described} (${address})`
        if (deny.some((r) => addressMatches(r, address, family, port))) {
          throw tunnelError('ERR_TARGET_DENIED', `${shown} matches a --deny rule`)
        }
        if (allow.some((r) => addressMatches(r, address, family, port))) continue
        const internal = INTERNAL.check(address, family === 6 ? 'ipv6' : 'ipv4')
        if (internal && !exactName) {
          throw tunnelError('ERR_TARGET_DENIED', `${shown} is an internal address no rule names`)
        }
        if (!nameAllowed) throw tunnelError('ERR_TARGET_DENIED', `${shown} matches no --allow rule`)
      }
      return { target, addresses }
    },
  }
}
