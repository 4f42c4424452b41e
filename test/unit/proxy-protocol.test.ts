import { describe, expect, it } from 'vitest'
import { encodeProxyHeader, parseProxyHeader } from '../../src/gateway/proxy-protocol.js'
import { parseTrustedProxies } from '../../src/gateway/client-address.js'

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

describe('PROXY protocol v1', () => {
  it('parses TCP4 and TCP6 lines and reports the header length', () => {
    const line = 'PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\r\n'
    expect(parseProxyHeader(Buffer.from(line + 'GET / HTTP/1.1'))).toEqual({
      kind: 'header',
      length: line.length,
      addresses: {
        sourceAddress: '203.0.113.7',
        sourcePort: 51234,
        destinationAddress: '10.0.0.5',
        destinationPort: 443,
      },
    })
    const v6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n'))
    expect(v6).toMatchObject({
      kind: 'header',
      addresses: { sourceAddress: '2001:db8::1', destinationPort: 65535 },
    })
  })

  it('UNKNOWN keeps the socket addresses', () => {
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({
      kind: 'header',
      length: 15,
      addresses: undefined,
    })
  })

  it.each([
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2', 'incomplete'],
    ['PROX', 'incomplete'],
    ['GET / HTTP/1.1\r\n', 'invalid'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'invalid'],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', 'invalid'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n', 'invalid'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', 'invalid'],
    ['PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'invalid'],
    ['PROXY ' + 'x'.repeat(120), 'invalid'],
  ])('%j → %s', (text, kind) => {
    expect(parseProxyHeader(Buffer.from(text)).kind).toBe(kind)
  })
})

describe('PROXY protocol v2', () => {
  it('round-trips TCP4 and TCP6 through the encoder and the parser', () => {
    for (const addresses of [
      {
        sourceAddress: '198.51.100.9',
        sourcePort: 40000,
        destinationAddress: '127.0.0.1',
        destinationPort: 6080,
      },
      {
        sourceAddress: '2001:db8::42',
        sourcePort: 1,
        destinationAddress: '::1',
        destinationPort: 2,
      },
    ]) {
      const header = encodeProxyHeader(2, addresses)
      expect(parseProxyHeader(Buffer.concat([header, Buffer.from('rest')]))).toEqual({
        kind: 'header',
        length: header.length,
        addresses,
      })
    }
  })

  it('maps an IPv4 client behind an IPv6 listener to TCP6', () => {
    const header = encodeProxyHeader(1, {
      sourceAddress: '192.0.2.1',
      sourcePort: 5,
      destinationAddress: '::1',
      destinationPort: 6,
    })
    expect(header.toString()).toBe('PROXY TCP6 ::ffff:192.0.2.1 ::1 5 6\r\n')
  })

  it('LOCAL and unknown families carry no addresses; TLVs are skipped', () => {
    const local = Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])])
    expect(parseProxyHeader(local)).toEqual({ kind: 'header', length: 16, addresses: undefined })
    const withTlv = Buffer.concat([
      SIG,
      Buffer.from([0x21, 0x11, 0x00, 0x0f]),
      Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 1, 187]),
      Buffer.from([0x04, 0x00, 0x00]), // an empty NOOP TLV
    ])
    expect(parseProxyHeader(withTlv)).toMatchObject({
      length: 31,
      addresses: { sourceAddress: '1.2.3.4', sourcePort: 80 },
    })
  })

  it('rejects bad versions, commands and oversized headers; waits for the rest of a short one', () => {
    expect(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 12])])).kind).toBe(
      'invalid',
    )
    expect(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x22, 0x11, 0, 12])])).kind).toBe(
      'invalid',
    )
    expect(parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])])).kind).toBe(
      'invalid',
    )
    expect(
      parseProxyHeader(Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0, 12, 1, 2])])).kind,
    ).toBe('incomplete')
    expect(parseProxyHeader(SIG.subarray(0, 5)).kind).toBe('incomplete')
  })
})

describe('--trust-proxy', () => {
  it('accepts addresses and CIDR blocks of both families', () => {
    const { addresses: list, unix } = parseTrustedProxies('127.0.0.1, 10.0.0.0/8, fd00::/8')!
    expect(list.check('10.1.2.3', 'ipv4')).toBe(true)
    expect(list.check('11.0.0.1', 'ipv4')).toBe(false)
    expect(list.check('fd12::1', 'ipv6')).toBe(true)
    expect(unix).toBe(false)
  })

  it("accepts unix (a unix-socket listener's peers) and loopback (127/8, ::1 and unix)", () => {
    expect(parseTrustedProxies('unix')).toMatchObject({ unix: true })
    const loopback = parseTrustedProxies('Loopback')!
    expect(loopback.unix).toBe(true)
    expect(loopback.addresses.check('127.3.4.5', 'ipv4')).toBe(true)
    expect(loopback.addresses.check('::1', 'ipv6')).toBe(true)
    expect(loopback.addresses.check('10.0.0.1', 'ipv4')).toBe(false)
  })

  it.each(['localhost', '10.0.0.0/33', '10.0.0.0/x', '1.2.3', 'fe80::1%eth0', 'unix:/run/x'])(
    'refuses %j with a ConfigError',
    (text) => {
      expect(() => parseTrustedProxies(text)).toThrow(/--trust-proxy/)
    },
  )
})
