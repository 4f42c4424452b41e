/**
 * @module gateway/proxy-protocol
 * HAProxy's PROXY protocol, versions 1 (text) and 2 (binary): parsing the header a load balancer puts in
 * front of a connection (so the daemon learns the real client address), and encoding one towards a target
 * (so the backend learns it). Pure functions over bytes, plus `readProxyHeader` for a live socket.
 */
import { isIPv4, isIPv6, SocketAddress, type Socket } from 'node:net'

export interface ProxyAddresses {
  sourceAddress: string
  sourcePort: number
  destinationAddress: string
  destinationPort: number
}

/** `addresses` is undefined for v1 `UNKNOWN`, v2 `LOCAL` and non-TCP families: keep the socket's own. */
export type ProxyParse =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'header'; length: number; addresses: ProxyAddresses | undefined }

const V1_PREFIX = Buffer.from('PROXY ')
/** A v1 header is at most 107 bytes, CRLF included (the spec's worst case, TCP6 with 5-digit ports). */
const V1_MAX = 107
const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
])
/** Addresses plus TLVs; anything larger is not a header we accept. */
const V2_MAX_PAYLOAD = 1024

/** Parses a header at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (startsWithPartial(buf, V2_SIGNATURE)) {
    return buf.length < 16 ? { kind: 'incomplete' } : parseV2(buf)
  }
  if (startsWithPartial(buf, V1_PREFIX)) return parseV1(buf)
  return { kind: 'invalid', reason: 'no PROXY protocol header' }
}

function startsWithPartial(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length)
  return buf.subarray(0, n).equals(prefix.subarray(0, n))
}

function parseV1(buf: Buffer): ProxyParse {
  const end = buf.indexOf('\r\n')
  if (end === -1) {
    return buf.length >= V1_MAX
      ? { kind: 'invalid', reason: 'PROXY v1 line too long' }
      : { kind: 'incomplete' }
  }
  if (end + 2 > V1_MAX) return { kind: 'invalid', reason: 'PROXY v1 line too long' }
  const fields = buf.subarray(0, end).toString('latin1').split(' ')
  const length = end + 2
  if (fields[1] === 'UNKNOWN') return { kind: 'header', length, addresses: undefined }
  if (fields.length !== 6) return { kind: 'invalid', reason: 'PROXY v1 line must have 6 fields' }
  const [, family, src, dst, sport, dport] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  const isFamily = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined
  if (isFamily === undefined)
    return { kind: 'invalid', reason: `PROXY v1 family ${JSON.stringify(family)}` }
  // A zone id (`fe80::1%eth0`) is not an address of the client: the spec has none, and we never pass one on.
  if (!isFamily(src) || !isFamily(dst) || plainIp(src) === undefined || plainIp(dst) === undefined)
    return { kind: 'invalid', reason: 'PROXY v1 address not of its family' }
  const sourcePort = parsePort(sport)
  const destinationPort = parsePort(dport)
  if (sourcePort === undefined || destinationPort === undefined) {
    return { kind: 'invalid', reason: 'PROXY v1 port out of range' }
  }
  return {
    kind: 'header',
    length,
    addresses: { sourceAddress: src, sourcePort, destinationAddress: dst, destinationPort },
  }
}

function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined
  const port = Number(text)
  return port <= 65535 ? port : undefined
}

function parseV2(buf: Buffer): ProxyParse {
  const verCmd = buf[12]!
  const family = buf[13]!
  const payload = buf.readUInt16BE(14)
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'PROXY v2 version nibble is not 2' }
  const command = verCmd & 0x0f
  if (command > 1) return { kind: 'invalid', reason: 'PROXY v2 command unknown' }
  if (payload > V2_MAX_PAYLOAD) return { kind: 'invalid', reason: 'PROXY v2 header too long' }
  const length = 16 + payload
  if (buf.length < length) return { kind: 'incomplete' }
  if (command === 0) return { kind: 'header', length, addresses: undefined } // LOCAL: a health check
  const body = buf.subarray(16, length)
  const block = V2_ADDRESS_BLOCKS[family]
  if (block !== undefined) {
    const { size, name, text } = block
    if (payload < 2 * size + 4)
      return { kind: 'invalid', reason: `PROXY v2 ${name} block too short` }
    return {
      kind: 'header',
      length,
      addresses: {
        sourceAddress: text(body.subarray(0, size)),
        destinationAddress: text(body.subarray(size, 2 * size)),
        sourcePort: body.readUInt16BE(2 * size),
        destinationPort: body.readUInt16BE(2 * size + 2),
      },
    }
  }
  return { kind: 'header', length, addresses: undefined } // UNSPEC, UDP or unix: nothing we can use
}

function ipv4(bytes: Buffer): string {
  return Array.from(bytes).join('.')
}

function ipv6(bytes: Buffer): string {
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  // Compress the longest run of zero groups, as addresses are usually written.
  let best = { start: -1, len: 0 }
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > best.len) best = { start: i, len: j - i }
    i = j
  }
  if (best.len < 2) return groups.join(':')
  const head = groups.slice(0, best.start).join(':')
  const tail = groups.slice(best.start + best.len).join(':')
  return `${head}::${tail}`
}

/**
 * Encodes a header for a target. Mixed families (an IPv4 client on an IPv6 listener) are sent as TCP6 with
 * the IPv4 address mapped; without addresses, v1 says UNKNOWN and v2 sends PROXY/UNSPEC. Total: addresses
 * that are not plain IPs (a zone id, a name) or ports outside 0-65535 give the UNKNOWN/UNSPEC header,
 * never a throw and never a malformed line.
 */
export function encodeProxyHeader(version: 1 | 2, addresses: ProxyAddresses | undefined): Buffer {
  const pair = addresses === undefined ? undefined : sameFamily(addresses)
  if (version === 1) {
    if (pair === undefined) return Buffer.from('PROXY UNKNOWN\r\n')
    const family = pair.v6 ? 'TCP6' : 'TCP4'
    return Buffer.from(
      `PROXY ${family} ${pair.src} ${pair.dst} ${pair.a.sourcePort} ${pair.a.destinationPort}\r\n`,
      'latin1',
    )
  }
  if (pair === undefined)
    return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])])
  const block = pair.v6
    ? Buffer.concat([ipv6Bytes(pair.src), ipv6Bytes(pair.dst), ports(pair.a)])
    : Buffer.concat([ipv4Bytes(pair.src), ipv4Bytes(pair.dst), ports(pair.a)])
  const head = Buffer.from([0x21, pair.v6 ? 0x21 : 0x11, 0, 0])
  head.writeUInt16BE(block.length, 2)
  return Buffer.concat([V2_SIGNATURE, head, block])
}

function sameFamily(a: ProxyAddresses) {
  const src = plainIp(a.sourceAddress)
  const dst = plainIp(a.destinationAddress)
  if (src === undefined || dst === undefined) return undefined
  if (!isPort(a.sourcePort) || !isPort(a.destinationPort)) return undefined
  if (isIPv4(src) && isIPv4(dst)) return { a, src, dst, v6: false }
  return {
    a,
    src: isIPv4(src) ? `::ffff:${src}` : src,
    dst: isIPv4(dst) ? `::ffff:${dst}` : dst,
    v6: true,
  }
}

/** `::ffff:1.2.3.4` → `1.2.3.4`. */
export function unmap(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

/**
 * `text` as a plain IP address in its one canonical spelling (IPv6 compressed and lower-case, an IPv4-mapped
 * address as IPv4), or undefined when it is not one. A zone id (`fe80::1%eth0`) is refused: `net.isIP`
 * accepts one with any characters (colons too), but it names an interface of the sender's host, never a
 * client, and code that reads the address as 8 groups breaks on it. Every address a client or a proxy
 * hands us passes through here before it is used (logs, limits, PROXY headers).
 */
export function plainIp(text: string): string | undefined {
  if (text.includes('%')) return undefined
  if (isIPv4(text)) return text
  if (!isIPv6(text)) return undefined
  return unmap(new SocketAddress({ address: text, family: 'ipv6' }).address)
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535
}

function ports(a: ProxyAddresses): Buffer {
  const out = Buffer.alloc(4)
  out.writeUInt16BE(a.sourcePort, 0)
  out.writeUInt16BE(a.destinationPort, 2)
  return out
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number))
}

function ipv6Bytes(address: string): Buffer {
  let text = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4 !== null) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number]
    text =
      text.slice(0, -v4[1]!.length) +
      `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined]
  const headGroups = head ? head.split(':') : []
  const tailGroups = tail ? tail.split(':') : []
  const zeros = 8 - headGroups.length - tailGroups.length
  const groups = [
    ...headGroups,
    ...Array<string>(tail === undefined ? 0 : zeros).fill('0'),
    ...tailGroups,
  ]
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/**
 * Reads a PROXY header from the start of `socket` (v1 or v2), leaving every byte after it unread.
 * Rejects on a missing or malformed header, on EOF and after `timeoutMs`.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
): Promise<ProxyAddresses | undefined> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const timer = setTimeout(
      () => done(new Error('no PROXY header within the handshake timeout')),
      timeoutMs,
    )
    socket.on('readable', socketOnReadable)
    socket.once('end', socketOnEnd)
    socket.once('error', done)

    function socketOnReadable(): void {
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) !== null) buf = Buffer.concat([buf, chunk])
      const parsed = parseProxyHeader(buf)
      if (parsed.kind === 'incomplete') return
      if (parsed.kind === 'invalid') {
        done(new Error(parsed.reason))
        return
      }
      const rest = buf.subarray(parsed.length)
      done(undefined, parsed.addresses)
      if (rest.length > 0) socket.unshift(rest)
    }
    function socketOnEnd(): void {
      done(new Error('connection ended before a PROXY header'))
    }
    function done(err?: Error, addresses?: ProxyAddresses): void {
      clearTimeout(timer)
      socket.off('readable', socketOnReadable)
      socket.off('end', socketOnEnd)
      socket.off('error', done)
      if (err) reject(err)
      else resolve(addresses)
    }
  })
}

/** PROXY v2 address blocks we use: TCP over IPv4 (0x11) and over IPv6 (0x21); others carry nothing usable. */
const V2_ADDRESS_BLOCKS: Partial<
  Record<number, { size: number; name: string; text: (bytes: Buffer) => string }>
> = {
  0x11: { size: 4, name: 'TCP4', text: ipv4 },
  0x21: { size: 16, name: 'TCP6', text: ipv6 },
}
