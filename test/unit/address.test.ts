import { describe, expect, it } from 'vitest'
import { formatAddress, parseListen, parseTarget } from '../../src/config/address.js'
import { ConfigError } from '../../src/errors.js'

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('parseListen', () => {
  it.each([
    ['6080', { kind: 'tcp', host: undefined, port: 6080 }],
    ['0', { kind: 'tcp', host: undefined, port: 0 }],
    ['127.0.0.1:6080', { kind: 'tcp', host: '127.0.0.1', port: 6080 }],
    ['0.0.0.0:0', { kind: 'tcp', host: '0.0.0.0', port: 0 }],
    ['[::]:6080', { kind: 'tcp', host: '::', port: 6080 }],
    ['[::1]:65535', { kind: 'tcp', host: '::1', port: 65535 }],
    ['[fe80::1%eth0]:80', { kind: 'tcp', host: 'fe80::1%eth0', port: 80 }],
    ['localhost:6080', { kind: 'tcp', host: 'localhost', port: 6080 }],
    ['gw-1.example.internal.:443', { kind: 'tcp', host: 'gw-1.example.internal.', port: 443 }],
    ['db_1:80', { kind: 'tcp', host: 'db_1', port: 80 }],
    ['unix:/run/gangway.sock', { kind: 'unix', path: '/run/gangway.sock' }],
  ])('reads %s', (text, expected) => {
    expect(parseListen(text)).toEqual(expected)
  })

  it('resolves a relative unix path against cwd', () => {
    expect(parseListen('unix:run/g.sock', { cwd: '/srv/app' })).toEqual({
      kind: 'unix',
      path: '/srv/app/run/g.sock',
    })
    expect(parseListen('unix:../g.sock', { cwd: '/srv/app' })).toEqual({
      kind: 'unix',
      path: '/srv/g.sock',
    })
  })

  it('resolves a relative unix path against process.cwd() by default', () => {
    expect(parseListen('unix:g.sock')).toEqual({ kind: 'unix', path: `${process.cwd()}/g.sock` })
  })

  it.each([
    ['', 'LISTEN "" is not an address (expected [host:]port or unix:/path)'],
    ['localhost', 'LISTEN "localhost" has no port (expected [host:]port or unix:/path)'],
    ['localhost:', 'LISTEN "localhost:" has no port (expected [host:]port or unix:/path)'],
    [
      ':6080',
      'LISTEN ":6080" has an empty host (write just the port, 6080, to listen on all interfaces)',
    ],
    ['65536', 'LISTEN "65536" has an invalid port "65536" (a port is a number from 0 to 65535)'],
    [
      'h:123456',
      'LISTEN "h:123456" has an invalid port "123456" (a port is a number from 0 to 65535)',
    ],
    ['h:http', 'LISTEN "h:http" has an invalid port "http" (a port is a number from 0 to 65535)'],
    ['h:-1', 'LISTEN "h:-1" has an invalid port "-1" (a port is a number from 0 to 65535)'],
    [
      '::1:6080',
      'LISTEN "::1:6080" has more than one ":" (an IPv6 address must be bracketed: write it as [::1]:6080)',
    ],
    [
      'a:b:c',
      'LISTEN "a:b:c" has more than one ":" (an IPv6 address must be bracketed: e.g. [::1]:6080)',
    ],
    ['[::1]', 'LISTEN "[::1]" has no port (expected [host:]port or unix:/path)'],
    ['[::1', 'LISTEN "[::1" has an unclosed "[" (expected [host:]port or unix:/path)'],
    [
      '[::1]6080',
      'LISTEN "[::1]6080" has unexpected text after "]" (expected [host:]port or unix:/path)',
    ],
    [
      '[127.0.0.1]:80',
      'LISTEN "[127.0.0.1]:80" has "127.0.0.1" in brackets, which is not an IPv6 address (expected [host:]port or unix:/path)',
    ],
    [
      '256.1.1.1:80',
      'LISTEN "256.1.1.1:80" has "256.1.1.1", which is not a valid IPv4 address (expected [host:]port or unix:/path)',
    ],
    [
      'bad host:80',
      'LISTEN "bad host:80" has an invalid host name "bad host" (expected [host:]port or unix:/path)',
    ],
    ['-x:80', 'LISTEN "-x:80" has an invalid host name "-x" (expected [host:]port or unix:/path)'],
    ['ws://h:80', 'LISTEN "ws://h:80" has a URL scheme (expected [host:]port or unix:/path)'],
    ['unix:', 'LISTEN "unix:" has an empty path (expected [host:]port or unix:/path)'],
    [
      'unix:a\0b',
      'LISTEN "unix:a\\u0000b" has a NUL byte in its path (expected [host:]port or unix:/path)',
    ],
  ])('refuses %j', (text, message) => {
    expect(errorOf(() => parseListen(text)).message).toBe(message)
  })

  it('names the label it is given', () => {
    expect(errorOf(() => parseListen('x', { label: 'config g.yaml: listen' })).message).toBe(
      'config g.yaml: listen "x" has no port (expected [host:]port or unix:/path)',
    )
  })
})

describe('parseTarget', () => {
  it.each([
    ['localhost:5900', { kind: 'tcp', host: 'localhost', port: 5900 }],
    ['[::1]:5900', { kind: 'tcp', host: '::1', port: 5900 }],
    ['db.internal:5432', { kind: 'tcp', host: 'db.internal', port: 5432 }],
    ['10.0.0.7:1', { kind: 'tcp', host: '10.0.0.7', port: 1 }],
    ['unix:/var/run/vnc.sock', { kind: 'unix', path: '/var/run/vnc.sock' }],
  ])('reads %s', (text, expected) => {
    expect(parseTarget(text)).toEqual(expected)
  })

  it('resolves a relative unix path against cwd', () => {
    expect(parseTarget('unix:vnc.sock', { cwd: '/tmp/x' })).toEqual({
      kind: 'unix',
      path: '/tmp/x/vnc.sock',
    })
  })

  it.each([
    ['localhost', 'TARGET "localhost" has no port (expected host:port or unix:/path)'],
    ['5900', 'TARGET "5900" has no host (expected host:port or unix:/path)'],
    [':5900', 'TARGET ":5900" has an empty host (expected host:port or unix:/path)'],
    ['h:0', 'TARGET "h:0" has an invalid port "0" (a port is a number from 1 to 65535)'],
    [
      'h:65536',
      'TARGET "h:65536" has an invalid port "65536" (a port is a number from 1 to 65535)',
    ],
    [
      '::1:5900',
      'TARGET "::1:5900" has more than one ":" (an IPv6 address must be bracketed: write it as [::1]:5900)',
    ],
    ['unix:', 'TARGET "unix:" has an empty path (expected host:port or unix:/path)'],
    ['[::1]', 'TARGET "[::1]" has no port (expected host:port or unix:/path)'],
  ])('refuses %j', (text, message) => {
    expect(errorOf(() => parseTarget(text)).message).toBe(message)
  })
})

describe('formatAddress', () => {
  it.each([
    [{ kind: 'tcp', host: undefined, port: 6080 } as const, '6080'],
    [{ kind: 'tcp', host: '127.0.0.1', port: 6080 } as const, '127.0.0.1:6080'],
    [{ kind: 'tcp', host: '::1', port: 5900 } as const, '[::1]:5900'],
    [{ kind: 'tcp', host: 'db.internal', port: 5432 } as const, 'db.internal:5432'],
    [{ kind: 'unix', path: '/run/g.sock' } as const, 'unix:/run/g.sock'],
  ])('formats %j as %s', (address, text) => {
    expect(formatAddress(address)).toBe(text)
  })

  it.each(['6080', '127.0.0.1:0', '[::]:6080', '[::1]:80', 'h.example:1', 'unix:/a/b.sock'])(
    'round-trips %s through parseListen',
    (text) => {
      expect(formatAddress(parseListen(text))).toBe(text)
    },
  )
})
