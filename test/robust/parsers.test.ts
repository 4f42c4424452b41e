/**
 * Property-based fuzzing of every parser that sees untrusted or operator input: whatever the input, the
 * answer is a value or the documented error, never a crash, a hang or a wrong kind of error.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { formatAddress, parseListen, parseTarget } from '../../src/config/address.js'
import { parseConfigText } from '../../src/config/config-file.js'
import { resolveConfig } from '../../src/config/options.js'
import { ConfigError } from '../../src/errors.js'
import { parseBytes, parseMode, parseSeconds } from '../../src/config/option-values.js'
import { encodeProxyHeader, parseProxyHeader } from '../../src/gateway/proxy-protocol.js'
import { parseRequestPath } from '../../src/gateway/static.js'
import { scale } from './scale.js'

const RUNS = scale(2_000, 50_000)

/** Calls `fn`; a thrown error must be a ConfigError (the one error users are meant to see). */
function valueOrConfigError(fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    expect(err.message.length).toBeGreaterThan(0)
    expect(err.message).not.toContain('\n') // one line, as the CLI promises
  }
}

/** Strings built from address-like pieces, so the fuzzer reaches deep into the grammar. */
const addressLike = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        '[',
        ']',
        ':',
        '::',
        '.',
        'unix:',
        '/',
        '%',
        '-',
        '0',
        '65535',
        '65536',
        'localhost',
        '::1',
        '127.0.0.1',
      ),
      fc.string({ maxLength: 4 }),
      fc.integer({ min: -5, max: 70_000 }).map(String),
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join(''))

describe('address parsers', () => {
  it('LISTEN and TARGET: a value or a one-line ConfigError for any string', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          addressLike,
          fc.string({ maxLength: 40 }),
          fc.string({ unit: 'grapheme', maxLength: 20 }),
        ),
        (text) => {
          valueOrConfigError(() => parseListen(text))
          valueOrConfigError(() => parseTarget(text))
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('a parsed TARGET formats back to text that parses to the same target', () => {
    fc.assert(
      fc.property(addressLike, (text) => {
        let target
        try {
          target = parseTarget(text)
        } catch {
          return
        }
        expect(parseTarget(formatAddress(target))).toEqual(target)
      }),
      { numRuns: RUNS },
    )
  })
})

describe('option values and config files', () => {
  it('seconds, sizes and modes: a number in range or a ConfigError, for strings and arbitrary JSON', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })),
        (value) => {
          valueOrConfigError(() => {
            const s = parseSeconds(value)
            expect(s >= 0 && Number.isFinite(s)).toBe(true)
          })
          valueOrConfigError(() => expect(Number.isSafeInteger(parseBytes(value))).toBe(true))
          valueOrConfigError(() => expect(parseMode(value)).toBeLessThanOrEqual(0o777))
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('a config file of arbitrary text: parsed or a ConfigError naming the file', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })), (text) => {
        try {
          parseConfigText(text, 'fuzz.yaml')
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
          expect((err as Error).message).toContain('fuzz.yaml')
        }
      }),
      { numRuns: RUNS },
    )
  })

  it('arbitrary keys and values in a config file never produce a half-valid Config', () => {
    const keys = fc.constantFrom(
      'listen',
      'target',
      'heartbeat',
      'maxMessageSize',
      'text',
      'web',
      'compress',
      'admin',
      'nope',
      'listenMode',
    )
    fc.assert(
      fc.property(fc.dictionary(keys, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 5 }), (file) => {
        try {
          const config = resolveConfig({
            file,
            fileName: 'fuzz.json',
            flags: {},
            target: '127.0.0.1:1',
          })
          expect(Object.isFrozen(config)).toBe(true)
          expect(config.target).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 1 })
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
        }
      }),
      { numRuns: scale(1_000, 20_000) },
    )
  })
})

describe('PROXY protocol parser', () => {
  it('never throws on arbitrary bytes, and never reports a header longer than the input', () => {
    const prefixed = fc.tuple(
      fc.constantFrom('', 'PROXY ', '\r\n\r\n\0\r\nQUIT\n'),
      fc.uint8Array({ maxLength: 120 }),
    )
    fc.assert(
      fc.property(prefixed, ([prefix, bytes]) => {
        const buf = Buffer.concat([Buffer.from(prefix, 'latin1'), Buffer.from(bytes)])
        const parsed = parseProxyHeader(buf)
        if (parsed.kind === 'header') expect(parsed.length).toBeLessThanOrEqual(buf.length)
      }),
      { numRuns: RUNS },
    )
  })

  it('round-trips every address pair in both versions', () => {
    const endpoint = fc.oneof(fc.ipV4(), fc.ipV6())
    fc.assert(
      fc.property(
        endpoint,
        endpoint,
        fc.integer({ min: 0, max: 65535 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.constantFrom(1 as const, 2 as const),
        (src, dst, sp, dp, version) => {
          const header = encodeProxyHeader(version, {
            sourceAddress: src,
            sourcePort: sp,
            destinationAddress: dst,
            destinationPort: dp,
          })
          const parsed = parseProxyHeader(header)
          expect(parsed.kind).toBe('header')
          if (parsed.kind !== 'header') return
          expect(parsed.length).toBe(header.length)
          expect(parsed.addresses?.sourcePort).toBe(sp)
          expect(parsed.addresses?.destinationPort).toBe(dp)
        },
      ),
      { numRuns: RUNS },
    )
  })
})

describe('static file request paths', () => {
  const pathLike = fc
    .array(
      fc.constantFrom(
        '/',
        '..',
        '.',
        '%2e',
        '%2E',
        '%2f',
        '%5c',
        '\\',
        '%00',
        '%',
        '%%',
        'a',
        'index.html',
        '.git',
        '?',
        '#',
        'http://x',
        '//',
      ),
      { maxLength: 10 },
    )
    .map((parts) => parts.join(''))

  it('any request target yields segments that cannot leave the root, or a 400/404', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          pathLike,
          fc.string({ maxLength: 30 }),
          fc.webUrl().map((u) => u.replace(/^https?:\/\/[^/]*/, '')),
        ),
        (target) => {
          try {
            const { segments } = parseRequestPath(target)
            for (const segment of segments) {
              expect(segment).not.toBe('..')
              expect(segment).not.toBe('.')
              expect(segment).not.toMatch(/[/\\\0]/)
              expect(segment.startsWith('.')).toBe(false)
            }
          } catch (err) {
            expect([400, 404]).toContain((err as { status?: number }).status)
          }
        },
      ),
      { numRuns: RUNS },
    )
  })
})
