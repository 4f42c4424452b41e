import { describe, expect, it } from 'vitest'
import {
  bearerSubprotocol,
  extractToken,
  redactUrl,
  safeEqual,
  type TokenSources,
} from '../../src/auth/carriers.js'
import { allowOrigins } from '../../src/auth/origin.js'
import { createConnectionCounter, createFailureLimiter } from '../../src/auth/limits.js'

const ALL: TokenSources = { cookieName: 'gangway_token', hostToken: true }

function req(headers: Record<string, string>, url = '/') {
  return { headers, url }
}

describe('token carriers', () => {
  it('reads each carrier on its own', () => {
    expect(
      extractToken(req({ 'sec-websocket-protocol': `binary, ${bearerSubprotocol('s1')}` }), ALL),
    ).toEqual({ carrier: 'subprotocol', token: 's1' })
    expect(extractToken(req({ authorization: 'Bearer s2' }), ALL)).toEqual({
      carrier: 'authorization',
      token: 's2',
    })
    expect(extractToken(req({ cookie: 'a=b; gangway_token=s3; c=d' }), ALL)).toEqual({
      carrier: 'cookie',
      token: 's3',
    })
    expect(extractToken(req({}, '/websockify?x=1&token=s4%2B&token=later'), ALL)).toEqual({
      carrier: 'query',
      token: 's4+',
    })
    expect(extractToken(req({ host: 'sess5.example.com:6080' }), ALL)).toEqual({
      carrier: 'host',
      token: 'sess5.example.com',
    })
  })

  it('takes the first carrier present: subprotocol, authorization, cookie, query, host', () => {
    const everything = {
      'sec-websocket-protocol': bearerSubprotocol('p'),
      authorization: 'Bearer a',
      cookie: 'gangway_token=c',
      host: 'h',
    }
    expect(extractToken(req(everything, '/?token=q'), ALL)?.token).toBe('p')
    const { ['sec-websocket-protocol']: _p, ...noProtocol } = everything
    expect(extractToken(req(noProtocol, '/?token=q'), ALL)?.token).toBe('a')
    const { authorization: _a, ...noAuth } = noProtocol
    expect(extractToken(req(noAuth, '/?token=q'), ALL)?.token).toBe('c')
    const { cookie: _c, ...noCookie } = noAuth
    expect(extractToken(req(noCookie, '/?token=q'), ALL)?.token).toBe('q')
    expect(extractToken(req(noCookie, '/'), ALL)?.token).toBe('h')
  })

  it('leaves the host and cookie carriers off unless configured', () => {
    const off: TokenSources = { cookieName: undefined, hostToken: false }
    expect(extractToken(req({ host: 'h', cookie: 'gangway_token=c' }), off)).toBeUndefined()
  })

  it('treats an empty ?token= as absent (websockify) and strips trailing newlines', () => {
    expect(extractToken(req({}, '/?token='), ALL)).toBeUndefined()
    expect(extractToken(req({}, '/?token=abc%0A'), ALL)?.token).toBe('abc')
  })

  it('reports a present but malformed token as such (→ 4401), not as absent', () => {
    expect(extractToken(req({ 'sec-websocket-protocol': 'gangway.bearer.***' }), ALL)).toEqual({
      carrier: 'subprotocol',
      token: undefined,
    })
    expect(extractToken(req({ authorization: 'Bearer' }), ALL)).toEqual({
      carrier: 'authorization',
      token: undefined,
    })
    expect(extractToken(req({}, '/?token=a%20b'), ALL)).toEqual({
      carrier: 'query',
      token: undefined,
    })
    expect(extractToken(req({ authorization: 'Basic eDp5' }), ALL)).toBeUndefined()
  })

  it('gives an IPv6 literal Host no token', () => {
    expect(extractToken(req({ host: '[::1]:6080' }), ALL)).toBeUndefined()
  })

  it('redacts every token parameter from a URL for the logs', () => {
    // A request target has no fragment: `#f` belongs to the value, as the carrier reads it.
    expect(redactUrl('/ws?a=1&token=secret&TOKEN=x#f')).toBe(
      '/ws?a=1&token=[redacted]&TOKEN=[redacted]',
    )
    expect(redactUrl('/plain')).toBe('/plain')
  })

  it('compares secrets by value', () => {
    expect(safeEqual('abc', 'abc')).toBe(true)
    expect(safeEqual('abc', 'abd')).toBe(false)
    expect(safeEqual('abc', 'abcd')).toBe(false)
  })
})

describe('allowedOrigins', () => {
  it('matches exact origins case-insensitively and wildcards on subdomains only', () => {
    const m = allowOrigins([
      'https://app.example.com',
      'https://*.corp.example',
      'http://localhost:8080',
    ])
    expect(m.allows('https://APP.example.com')).toBe(true)
    expect(m.allows('https://app.example.com:443')).toBe(true)
    expect(m.allows('http://app.example.com')).toBe(false)
    expect(m.allows('https://a.b.corp.example')).toBe(true)
    expect(m.allows('https://corp.example')).toBe(false)
    expect(m.allows('https://evilcorp.example')).toBe(false)
    expect(m.allows('http://localhost:8080')).toBe(true)
    expect(m.allows('http://localhost:8081')).toBe(false)
    expect(m.allows(undefined)).toBe(false)
    expect(m.allows('null')).toBe(false)
  })

  it('refuses entries that are not origins', () => {
    expect(() => allowOrigins(['example.com'])).toThrow(/allowedOrigins/)
    expect(() => allowOrigins(['https://example.com/path'])).toThrow(/allowedOrigins/)
  })
})

describe('limits', () => {
  it('blocks an address after max failures within the window, and forgets them after it', () => {
    let now = 0
    const limiter = createFailureLimiter(3, 1000, () => now)
    for (let i = 0; i < 3; i++) limiter.fail('a')
    expect(limiter.isBlocked('a')).toBe(true)
    expect(limiter.isBlocked('b')).toBe(false)
    now = 1001
    expect(limiter.isBlocked('a')).toBe(false)
    expect(limiter.size()).toBe(0)
  })

  it('counts connections per key and releases each slot once', () => {
    const counter = createConnectionCounter()
    const first = counter.acquire('k', 2)
    const second = counter.acquire('k', 2)
    expect(counter.acquire('k', 2)).toBeUndefined()
    first?.()
    first?.()
    expect(counter.count('k')).toBe(1)
    expect(counter.acquire('k', 2)).toBeDefined()
    second?.()
  })
})
