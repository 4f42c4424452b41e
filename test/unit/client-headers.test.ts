import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseExtraHeaders } from '../../src/client/headers.js'
import { ConfigError } from '../../src/errors.js'

describe('parseExtraHeaders', () => {
  // An Origin is public (a refused one is named); every other header's value may be a secret.
  it('never echoes a header value in an error, never accepts a control character or one beyond Latin-1', () => {
    const secret = fc
      .string({ unit: 'binary', minLength: 12, maxLength: 60 })
      .map((s) => `S3cr3t-${s}`)
    const name = fc.constantFrom('Authorization', 'Cookie', 'X-Api-Key', 'Bad Name', '')
    fc.assert(
      fc.property(name, secret, fc.boolean(), (headerName, value, tokenInAuthorization) => {
        const text = `${headerName}:${value}`
        try {
          const parsed = parseExtraHeaders({
            headers: [{ text, label: '--header #1' }],
            tokenInAuthorization,
          })
          for (const v of Object.values(parsed.headers)) {
            expect(v).not.toMatch(/[^\t\x20-\x7e\x80-\xff]/) // what Node's HTTP client accepts
          }
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
          expect((err as Error).message).not.toContain(value.trim())
        }
      }),
      { numRuns: 300 },
    )
  })

  it('sends an origin as a browser would, and refuses what is not one', () => {
    const origin = (text: string) =>
      parseExtraHeaders({ origin: text, tokenInAuthorization: false }).headers['Origin']
    expect(origin('HTTPS://App.Example.com:443')).toBe('https://app.example.com')
    expect(origin('http://[::1]:8080/')).toBe('http://[::1]:8080')
    expect(origin('null')).toBe('null')
    for (const bad of [
      'app.example.com',
      'https://a.example/x',
      'https://u:p@a.example',
      'https://a.example?x',
    ]) {
      expect(() => origin(bad), bad).toThrow(ConfigError)
    }
  })
})
