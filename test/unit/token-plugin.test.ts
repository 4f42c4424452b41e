import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../../src/config/options.js'

function resolve(flags: Record<string, unknown>) {
  return resolveConfig({ flags, listen: '127.0.0.1:6080', cwd: '/srv' })
}

describe('websockify --token-plugin aliases', () => {
  it.each([
    ['TokenFile', 'tokens', 'tokenFile', '/srv/tokens'],
    ['ReadOnlyTokenFile', '/etc/t', 'tokenFile', '/etc/t'],
    ['TokenFileName', 'dir', 'tokenDir', '/srv/dir'],
    ['JWTTokenApi', 'key.pem', 'jwtKey', '/srv/key.pem'],
    ['TokenRedis', 'localhost:6379:0::ns', 'tokenRedis', 'localhost:6379:0::ns'],
    ['JSONTokenApi', 'http://api/t/%s', 'tokenApi', 'http://api/t/%s'],
  ])('%s with --token-source %s sets %s', (plugin, source, key, value) => {
    const config = resolve({ tokenPlugin: plugin, tokenSource: source })
    expect((config as unknown as Record<string, unknown>)[key]).toBe(value)
    expect(config.target).toBeUndefined()
  })

  it('reads a JWTTokenApi HMAC key as base64url, as websockify does', () => {
    expect(resolve({ tokenPlugin: 'JWTTokenApi', tokenSource: 'k' }).jwtSecretEncoding).toBe(
      'base64url',
    )
    expect(resolve({ jwtKey: 'k' }).jwtSecretEncoding).toBeUndefined()
  })

  it('refuses one without the other, unknown plugins, and a plugin doubling an option', () => {
    expect(() => resolve({ tokenSource: 'x' })).toThrow('--token-source needs --token-plugin')
    expect(() => resolve({ tokenPlugin: 'TokenFile' })).toThrow('needs --token-source')
    expect(() => resolve({ tokenPlugin: 'UnixDomainSocketDirectory', tokenSource: 'x' })).toThrow(
      /--token-plugin: expected one of/,
    )
    expect(() => resolve({ tokenPlugin: 'TokenFile', tokenSource: 'a', tokenFile: 'b' })).toThrow(
      /keep one/,
    )
  })
})

describe('token sources without a TARGET', () => {
  it.each([
    { jwtKey: 'k' },
    { jwksUrl: 'https://idp.test/jwks' },
    { tokenApi: 'http://api/%s' },
    { tokenRedis: 'redis://localhost' },
    { clientTargets: true, allow: ['*'] },
  ])('%j needs no TARGET', (flags) => {
    expect(resolve(flags).target).toBeUndefined()
  })
})
