import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatAddress, parseTarget } from '../../src/config/address.js'
import { describeTarget } from '../../src/targets/dial.js'
import { ConfigError } from '../../src/errors.js'
import { parseTargetTlsSpec } from '../../src/config/target-tls-spec.js'
import { loadTargetTls, tlsSettingsFor } from '../../src/targets/target-tls.js'
import { parseRoutes } from '../../src/config/routes.js'
import { parseTokenFile, parseTokenTarget } from '../../src/targets/token-file.js'
import { tokenKey } from '../../src/config/routes.js'
import { DEFAULTS } from '../../src/config/options.js'
import { makeCa, makeLeaf, type CertFiles } from '../helpers/certs.js'

function errorOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).message
  }
  throw new Error('expected a ConfigError')
}

describe('tls:// in the TARGET grammar', () => {
  it.each([
    ['tls://db.internal:5432', { kind: 'tcp', host: 'db.internal', port: 5432, tls: true }],
    ['tls://127.0.0.1:6380', { kind: 'tcp', host: '127.0.0.1', port: 6380, tls: true }],
    ['tls://[::1]:6380', { kind: 'tcp', host: '::1', port: 6380, tls: true }],
  ])('reads %s and formats it back', (text, expected) => {
    const target = parseTarget(text)
    expect(target).toEqual(expected)
    expect(formatAddress(target)).toBe(text)
    expect(describeTarget(target)).toBe(text)
  })

  it.each([
    ['tls://', 'TARGET "tls://" is not an address (expected host:port or unix:/path)'],
    ['tls://db', 'TARGET "tls://db" has no port (expected host:port or unix:/path)'],
    [
      'tls://unix:/run/x.sock',
      'TARGET "tls://unix:/run/x.sock" is TLS over a unix socket (tls:// takes host:port)',
    ],
    [
      'tls://tls://db:1',
      'TARGET "tls://tls://db:1" has a URL scheme (expected host:port or unix:/path)',
    ],
    ['tcp://db:1', 'TARGET "tcp://db:1" has a URL scheme (expected host:port or unix:/path)'],
  ])('refuses %s', (text, message) => {
    expect(errorOf(() => parseTarget(text))).toBe(message)
  })

  it('reads tls:// lines in websockify token files', () => {
    const table = parseTokenFile(
      'a: tls://vnc.lab:5901\nb: tls://[::1]:5901\nc: tls://::1:5901\n',
      't',
    )
    expect(table.get(tokenKey('a'))).toEqual({
      kind: 'tcp',
      host: 'vnc.lab',
      port: 5901,
      tls: true,
    })
    expect(table.get(tokenKey('b'))).toEqual({ kind: 'tcp', host: '::1', port: 5901, tls: true })
    expect(table.get(tokenKey('c'))).toEqual({ kind: 'tcp', host: '::1', port: 5901, tls: true })
    expect(errorOf(() => parseTokenTarget('tls://unix_socket:/x', 't:1', '/'))).toBe(
      't:1: tls:// takes host:port, got "tls://unix_socket:/x"',
    )
  })
})

describe('route tls mapping', () => {
  it('takes ca, cert, key, servername and insecure; paths resolve against the config directory', () => {
    const routes = parseRoutes(
      {
        db: {
          target: 'tls://10.0.0.5:5432',
          tls: { ca: 'ca.pem', cert: '/etc/c.pem', key: 'k.pem', servername: 'db.internal' },
        },
      },
      'routes',
      '/srv/gw',
    )
    expect(routes.get('db')?.options.tls).toEqual({
      ca: '/srv/gw/ca.pem',
      cert: '/etc/c.pem',
      key: '/srv/gw/k.pem',
      servername: 'db.internal',
    })
  })

  it.each([
    [
      { target: 'db:5432', tls: { ca: 'x' } },
      'routes.r.tls: TLS settings need a tls://host:port target',
    ],
    [
      { target: 'tls://db:1', tls: { ca: 1 } },
      'routes.r.tls: ca: expected a non-empty string, got 1',
    ],
    [
      { target: 'tls://db:1', tls: { sni: 'x' } },
      'routes.r.tls: unknown key "sni" (known: ca, cert, key, servername, insecure)',
    ],
    [
      { target: 'tls://db:1', tls: { key: 'k' } },
      'routes.r.tls: key: needs cert (the client certificate)',
    ],
    [
      { target: 'tls://db:1', tls: { insecure: true, ca: 'c' } },
      'routes.r.tls: insecure: cannot be combined with ca (insecure skips verification; drop one of them)',
    ],
    [
      { target: 'tls://db:1', tls: { servername: '10.0.0.1' } },
      'routes.r.tls: servername: expected a DNS name, got "10.0.0.1" (an IP target is verified against its IP without one)',
    ],
    [
      { target: 'tls://db:1', tls: { insecure: 'yes' } },
      'routes.r.tls: insecure: expected true or false',
    ],
  ])('refuses %j', (spec, message) => {
    expect(errorOf(() => parseRoutes({ r: spec }, 'routes'))).toBe(message)
  })
})

describe('loadTargetTls: files read once at startup, errors name the file', () => {
  let dir: string
  let ca: CertFiles
  let clientCert: CertFiles
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gangway-tls-load-'))
    ca = await makeCa(dir)
    clientCert = await makeLeaf(dir, ca, 'client', 'client', { client: true })
    await writeFile(join(dir, 'junk.pem'), 'not a certificate\n')
  })
  afterAll(() => rm(dir, { recursive: true, force: true }))
  const base = { ...DEFAULTS, routes: undefined }

  it('loads the defaults and every route, and hands tokens the defaults', () => {
    const routes = parseRoutes(
      {
        r: {
          target: 'tls://db:1',
          tls: { cert: clientCert.cert, key: clientCert.key, servername: 'db.x' },
        },
      },
      'routes',
    )
    const loaded = loadTargetTls({ ...base, targetCa: ca.cert, routes })
    const route = routes.get('r')
    const fromRoute = tlsSettingsFor(loaded, route!.target, route!.options.tls)
    expect(fromRoute).toMatchObject({ servername: 'db.x', insecure: false })
    const fromToken = tlsSettingsFor(loaded, parseTarget('tls://db:1'), undefined)
    expect(fromToken).toMatchObject({ servername: undefined, insecure: false })
    expect(fromToken?.context).not.toBe(fromRoute?.context)
    expect(tlsSettingsFor(loaded, parseTarget('db:1'), undefined)).toBeUndefined()
    expect(loaded.warnings).toEqual([])
  })

  it('warns once per setting that turns verification off', () => {
    const routes = parseRoutes({ lab: { target: 'tls://vm:1', tls: { insecure: true } } }, 'routes')
    const loaded = loadTargetTls({ ...base, targetInsecure: true, routes })
    expect(loaded.warnings).toHaveLength(2)
    expect(loaded.warnings[1]).toMatch(/route "lab" is NOT verified/)
  })

  it.each([
    [
      'a missing CA file',
      () => ({ targetCa: join(dir, 'nope.pem') }),
      /^--target-ca .*nope\.pem: cannot read it \(ENOENT\)$/,
    ],
    [
      'a CA file without a certificate',
      () => ({ targetCa: join(dir, 'junk.pem') }),
      /^--target-ca .*junk\.pem: no PEM certificate in it/,
    ],
    [
      'a client key that does not match',
      () => ({ targetCert: clientCert.cert, targetKey: ca.key }),
      /^--target-cert .*client\.crt \/ .*ca\.key: not a usable PEM certificate and key/,
    ],
    ['a key without a certificate', () => ({ targetKey: ca.key }), /^--target-key: needs cert/],
  ])('refuses %s', (_name, overrides, message) => {
    expect(errorOf(() => loadTargetTls({ ...base, ...overrides() }))).toMatch(message)
  })

  it('names the route whose file is missing', () => {
    const routes = parseRoutes(
      { vnc: { target: 'tls://vnc:5901', tls: { ca: join(dir, 'gone.pem') } } },
      'routes',
    )
    expect(errorOf(() => loadTargetTls({ ...base, routes }))).toMatch(
      /^route "vnc" tls\.ca .*gone\.pem: cannot read it \(ENOENT\)$/,
    )
  })

  it('parses a spec on its own', () => {
    expect(parseTargetTlsSpec({ insecure: false }, '/')).toEqual({ insecure: false })
  })
})
