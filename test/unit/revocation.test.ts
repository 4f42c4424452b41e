import { describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/log.js'
import { DEFAULT_REVOCATION_TTL_S, planRevocation } from '../../src/state/revoke.js'

const NOW = 1_800_000_000_000

function jwtWith(payload: object): string {
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'HS256' })}.${part(payload)}.signature`
}

describe('planRevocation', () => {
  it('keys a token by its fingerprint, and accepts a fingerprint as logs show it', () => {
    expect(planRevocation({ token: 'some-token' }, NOW)).toEqual({
      fingerprint: fingerprint('some-token'),
      ttlMs: DEFAULT_REVOCATION_TTL_S * 1000,
    })
    expect(planRevocation({ fingerprint: '3F2A9C01', ttlSeconds: 0 }, NOW)).toEqual({
      fingerprint: '3f2a9c01',
      ttlMs: 0,
    })
  })

  it('lasts until a signed token expires (plus the clock tolerance), unless a ttl is given', () => {
    const token = jwtWith({ exp: NOW / 1000 + 600 })
    expect(planRevocation({ token }, NOW).ttlMs).toBe(600_000 + 60_000)
    expect(planRevocation({ token: jwtWith({ exp: NOW / 1000 - 5 }) }, NOW).ttlMs).toBe(60_000)
    expect(planRevocation({ token, ttlSeconds: 30 }, NOW).ttlMs).toBe(30_000)
    expect(planRevocation({ token: 'a.b.c' }, NOW).ttlMs).toBe(DEFAULT_REVOCATION_TTL_S * 1000)
  })

  it('refuses requests that name no token, both, or a malformed fingerprint', () => {
    expect(() => planRevocation({})).toThrow(/exactly one/)
    expect(() => planRevocation({ token: 't', fingerprint: '3f2a9c01' })).toThrow(/exactly one/)
    expect(() => planRevocation({ fingerprint: '3f2a9c0' })).toThrow(/8 hex/)
    expect(() => planRevocation({ token: '' })).toThrow(/empty/)
    expect(() => planRevocation({ token: 't', ttlSeconds: -1 })).toThrow(/ttl/)
  })
})
