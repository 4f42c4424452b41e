/**
 * One rule for who the client is (issue 13): PROXY data, then only from a trusted proxy the one header the
 * operator named, walked from its right end past trusted proxies; every address a plain IP before use.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { IncomingMessage } from 'node:http'
import {
  createClientResolver,
  formatEndpoint,
  kProxyAddresses,
  parseClientHeader,
  parseTrustedProxies,
} from '../../src/gateway/client-address.js'
import {
  encodeProxyHeader,
  parseProxyHeader,
  plainIp,
  type ProxyAddresses,
} from '../../src/gateway/proxy-protocol.js'

/** A request as the resolver sees it: the socket's peer (undefined = a unix-socket listener) and headers. */
function request(
  peer: string | undefined,
  headers: Record<string, string | string[]> = {},
  proxied?: ProxyAddresses,
): IncomingMessage {
  const socket = { remoteAddress: peer, remotePort: peer === undefined ? undefined : 40000 }
  if (proxied !== undefined) Object.assign(socket, { [kProxyAddresses]: proxied })
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return { socket, headers: lower } as unknown as IncomingMessage
}

function clientOf(
  trust: string | undefined,
  header: string,
  req: IncomingMessage,
): string | undefined {
  return formatEndpoint(
    createClientResolver(parseTrustedProxies(trust), parseClientHeader(header))(req),
  )
}

describe('who the client is', () => {
  it.each([
    // [what, --trust-proxy, --trust-proxy-header, peer, headers, client]
    [
      'untrusted peer: headers ignored',
      '10.0.0.0/8',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '6.6.6.6' },
      '127.0.0.1:40000',
    ],
    [
      'no --trust-proxy: headers ignored',
      undefined,
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '6.6.6.6' },
      '127.0.0.1:40000',
    ],
    [
      'right-most untrusted address',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '6.6.6.6, 198.51.100.20' },
      '198.51.100.20',
    ],
    [
      'past trusted hops',
      '127.0.0.1, 10.0.0.0/8',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '6.6.6.6, 198.51.100.20, 10.1.1.1' },
      '198.51.100.20',
    ],
    [
      'repeated header lines',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '6.6.6.6, 198.51.100.20' },
      '198.51.100.20',
    ],
    [
      'all trusted: the left-most',
      '127.0.0.1, 10.0.0.0/8',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '10.0.0.2, 10.0.0.1' },
      '10.0.0.2',
    ],
    [
      'port forms stripped',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '[2001:DB8:0::5]:4711' },
      '[2001:db8::5]',
    ],
    [
      'v4 with port',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '198.51.100.7:1234' },
      '198.51.100.7',
    ],
    [
      'mapped v4 is v4',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '::ffff:198.51.100.7' },
      '198.51.100.7',
    ],
    [
      'a zone id is not an address: the walk stops',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '198.51.100.1, fe80::1%a:b:c:d:e:f:g:h' },
      '127.0.0.1:40000',
    ],
    [
      'garbage is not an address',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': '198.51.100.1, unix' },
      '127.0.0.1:40000',
    ],
    [
      'garbage beyond a trusted hop: that hop',
      '127.0.0.1, 10.0.0.0/8',
      'X-Forwarded-For',
      '127.0.0.1',
      { 'X-Forwarded-For': 'junk, 10.0.0.9' },
      '10.0.0.9',
    ],
    [
      'Forwarded is not read by default',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { Forwarded: 'for=198.51.100.9', 'X-Forwarded-For': '203.0.113.4' },
      '203.0.113.4',
    ],
    [
      'Forwarded alone is not read by default',
      '127.0.0.1',
      'X-Forwarded-For',
      '127.0.0.1',
      { Forwarded: 'for=198.51.100.9' },
      '127.0.0.1:40000',
    ],
    [
      'Forwarded when chosen',
      '127.0.0.1',
      'Forwarded',
      '127.0.0.1',
      {
        Forwarded: 'for=6.6.6.6, for="[2001:db8::5]:4711";proto=https',
        'X-Forwarded-For': '203.0.113.4',
      },
      '[2001:db8::5]',
    ],
    [
      'Forwarded: a quoted comma does not split',
      '127.0.0.1',
      'Forwarded',
      '127.0.0.1',
      { Forwarded: 'for=198.51.100.3;by="a,b"' },
      '198.51.100.3',
    ],
    [
      'Forwarded: an element without for= stops the walk',
      '127.0.0.1',
      'Forwarded',
      '127.0.0.1',
      { Forwarded: 'for=6.6.6.6, proto=https' },
      '127.0.0.1:40000',
    ],
    [
      'Forwarded: unknown / obfuscated stop the walk',
      '127.0.0.1',
      'Forwarded',
      '127.0.0.1',
      { Forwarded: 'for=6.6.6.6, for=_hidden' },
      '127.0.0.1:40000',
    ],
    [
      'another header (X-Real-IP)',
      '127.0.0.1',
      'x-real-ip',
      '127.0.0.1',
      { 'X-Real-IP': '198.51.100.8', 'X-Forwarded-For': '6.6.6.6' },
      '198.51.100.8',
    ],
    [
      'unix listener, untrusted: one peer',
      '127.0.0.1',
      'X-Forwarded-For',
      undefined,
      { 'X-Forwarded-For': '198.51.100.20' },
      'unix',
    ],
    [
      'unix listener, --trust-proxy unix',
      'unix',
      'X-Forwarded-For',
      undefined,
      { 'X-Forwarded-For': '6.6.6.6, 198.51.100.20' },
      '198.51.100.20',
    ],
    [
      'unix listener, --trust-proxy loopback',
      'loopback',
      'X-Forwarded-For',
      undefined,
      { 'X-Forwarded-For': '198.51.100.20, 127.0.0.1' },
      '198.51.100.20',
    ],
    [
      'a client cannot claim to be unix',
      'unix',
      'X-Forwarded-For',
      undefined,
      { 'X-Forwarded-For': '198.51.100.20, unix' },
      'unix',
    ],
    [
      'loopback trusts ::1',
      'loopback',
      'X-Forwarded-For',
      '::1',
      { 'X-Forwarded-For': '198.51.100.20' },
      '198.51.100.20',
    ],
    [
      'a mapped loopback peer is trusted as v4',
      '127.0.0.1',
      'X-Forwarded-For',
      '::ffff:127.0.0.1',
      { 'X-Forwarded-For': '198.51.100.20' },
      '198.51.100.20',
    ],
  ] as const)('%s', (_what, trust, header, peer, headers, expected) => {
    expect(clientOf(trust, header, request(peer, headers))).toBe(expected)
  })

  it('takes the PROXY header source as the peer, then trusts it or not', () => {
    const proxied = {
      sourceAddress: '10.0.0.7',
      sourcePort: 5555,
      destinationAddress: '10.0.0.1',
      destinationPort: 443,
    }
    const headers = { 'X-Forwarded-For': '198.51.100.4' }
    expect(clientOf(undefined, 'X-Forwarded-For', request('127.0.0.1', headers, proxied))).toBe(
      '10.0.0.7:5555',
    )
    expect(clientOf('10.0.0.0/8', 'X-Forwarded-For', request('127.0.0.1', headers, proxied))).toBe(
      '198.51.100.4',
    )
  })

  it('refuses a header option that is not a field name', () => {
    expect(() => parseClientHeader('X Forwarded')).toThrow(/--trust-proxy-header/)
    expect(() => parseClientHeader('')).toThrow(/--trust-proxy-header/)
    expect(parseClientHeader(' Forwarded ')).toBe('forwarded')
  })

  it('never answers with anything but a plain IP (or the unix peer), whatever the header holds', () => {
    const header = fc.oneof(
      fc.string(),
      fc
        .array(
          fc.oneof(
            fc.ipV4(),
            fc.ipV6(),
            fc.string(),
            fc.constantFrom(
              'fe80::1%eth0',
              'fe80::1%a:b:c:d:e:f:g:h',
              '[::1]:80',
              'unix',
              '_x',
              'unknown',
            ),
          ),
          { maxLength: 5 },
        )
        .map((a) => a.join(', ')),
    )
    fc.assert(
      fc.property(header, fc.constantFrom('X-Forwarded-For', 'Forwarded'), (value, name) => {
        const wrapped =
          name === 'Forwarded'
            ? value
                .split(',')
                .map((v) => `for="${v.trim()}"`)
                .join(',')
            : value
        for (const peer of ['127.0.0.1', undefined]) {
          const resolved = createClientResolver(
            parseTrustedProxies('loopback, 10.0.0.0/8'),
            parseClientHeader(name),
          )(request(peer, { [name]: wrapped }))
          expect(
            resolved.address === 'unix' || plainIp(resolved.address) === resolved.address,
          ).toBe(true)
        }
      }),
      { numRuns: 2000 },
    )
  })
})

describe('plainIp and the PROXY encoder', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001:DB8:0::1', '2001:db8::1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['fe80::1%eth0', undefined],
    ['fe80::1%a:b:c:d:e:f:g:h', undefined],
    ['localhost', undefined],
    ['01.2.3.4', undefined],
  ])('plainIp(%j) = %j', (text, expected) => {
    expect(plainIp(text)).toBe(expected)
  })

  it('is total: any addresses and ports give a header that parses back (UNKNOWN when not plain)', () => {
    const address = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.string(),
      fc.ipV6().map((a) => `${a}%a:b:c:d:e:f:g:h`),
      fc.constantFrom('fe80::1%eth0', '::ffff:1.2.3.4', '1.2.3.4.5', ''),
    )
    const port = fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer(), fc.double())
    fc.assert(
      fc.property(address, address, port, port, fc.constantFrom(1, 2), (src, dst, sp, dp, v) => {
        const addresses = {
          sourceAddress: src,
          destinationAddress: dst,
          sourcePort: sp,
          destinationPort: dp,
        }
        const parsed = parseProxyHeader(encodeProxyHeader(v, addresses))
        expect(parsed.kind).toBe('header')
        if (parsed.kind !== 'header' || parsed.addresses === undefined) return
        expect(parsed.addresses.sourceAddress).not.toContain('%')
        expect(plainIp(parsed.addresses.sourceAddress)).toBe(plainIp(src))
      }),
      { numRuns: 3000 },
    )
  })

  it('refuses a zone id in a PROXY v1 line from a balancer', () => {
    const line = 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'
    expect(parseProxyHeader(Buffer.from(line)).kind).toBe('invalid')
  })
})
