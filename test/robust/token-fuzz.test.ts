/**
 * Fuzzed token files (websockify's grammar, src/targets/token-file.ts): any text gives a table or a
 * one-line ConfigError naming the file and the offending line; generated valid files round-trip.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { Target } from '../../src/config/options.js'
import { ConfigError } from '../../src/errors.js'
import { tokenKey } from '../../src/config/routes.js'
import { parseTokenFile, type TokenTable } from '../../src/targets/token-file.js'
import { scale } from './scale.js'

const RUNS = scale(2_000, 50_000)
const FILE = '/etc/gangway/tokens.conf'

/** A table, or a ConfigError `token file FILE:N: …` (one line) where N is a non-blank, non-comment line. */
function parseOrLineError(text: string): TokenTable | ConfigError {
  try {
    return parseTokenFile(text, FILE)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    expect(err.message).not.toContain('\n')
    const match = /^token file (.+):(\d+): ./.exec(err.message)
    expect(match?.[1], err.message).toBe(FILE)
    const line = text.split('\n')[Number(match?.[2]) - 1]
    expect(line, err.message).toBeDefined()
    const trimmed = (line ?? '').trim()
    expect(trimmed === '' || trimmed.startsWith('#'), err.message).toBe(false)
    return err
  }
}

/** Pieces of the grammar: separators, brackets, unix_socket:, ports in and out of range. */
const piece = fc.oneof(
  fc.constantFrom(
    ': ',
    ':\t',
    ':',
    '::',
    ' ',
    '#',
    '[',
    ']',
    '[::1]',
    'unix_socket:',
    '/run/x.sock',
    '..',
    'localhost',
    '127.0.0.1',
    '0',
    '65535',
    '65536',
    '99999999',
    '\r',
    '\u00a0',
  ),
  fc.string({ maxLength: 5 }),
)
const tokenFileLike = fc
  .array(
    fc.array(piece, { maxLength: 7 }).map((p) => p.join('')),
    { maxLength: 8 },
  )
  .map((lines) => lines.join('\n'))

/** A token websockify's grammar can carry: no `:`+whitespace, no surrounding whitespace, no leading `#`. */
const token = fc
  .stringMatching(/^[A-Za-z0-9_.~+/=-][A-Za-z0-9_.~+/=:-]{0,40}$/)
  .filter((t) => !/:\s/.test(t) && !t.endsWith(':'))
const host = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}$/),
  fc.ipV4(),
  fc.ipV6(),
)
const target: fc.Arbitrary<Target> = fc.oneof(
  fc.record({ kind: fc.constant('tcp' as const), host, port: fc.integer({ min: 1, max: 65535 }) }),
  fc
    .stringMatching(/^\/[A-Za-z0-9_.-]{1,12}(\/[A-Za-z0-9_-]{1,12}){0,3}$/)
    .filter((p) => !p.split('/').includes('..') && !p.split('/').includes('.'))
    .map((path): Target => ({ kind: 'unix', path })),
)

function formatTarget(t: Target, bracket: boolean): string {
  if (t.kind === 'unix') return `unix_socket:${t.path}`
  const h = t.host.includes(':') && bracket ? `[${t.host}]` : t.host
  return `${h}:${t.port}`
}

describe('token file parser', () => {
  it('arbitrary text: a table or a ConfigError naming the file and a real line', () => {
    fc.assert(
      fc.property(fc.oneof(tokenFileLike, fc.string({ maxLength: 80 })), (text) => {
        const result = parseOrLineError(text)
        if (!(result instanceof ConfigError)) {
          for (const value of result.values()) {
            if (value.kind === 'tcp') {
              expect(Number.isInteger(value.port) && value.port >= 1 && value.port <= 65535).toBe(
                true,
              )
              expect(value.host).not.toBe('')
            } else expect(value.path.startsWith('/')).toBe(true)
          }
        }
      }),
      { numRuns: RUNS },
    )
  })

  it('generated valid files (comments, blank lines, CRLF, padding, IPv6 with or without brackets) round-trip; the last line wins', () => {
    const entry = fc.record({
      token,
      target,
      bracket: fc.boolean(),
      pad: fc.constantFrom('', ' ', '\t'),
    })
    const noise = fc.constantFrom('', '   ', '# a comment: with: colons', '  #x: y:1')
    fc.assert(
      fc.property(
        fc.array(fc.tuple(entry, noise), { minLength: 1, maxLength: 12 }),
        fc.boolean(),
        (entries, crlf) => {
          const lines: string[] = []
          for (const [e, n] of entries) {
            lines.push(
              `${e.pad}${e.token}:${e.pad === '\t' ? '\t' : ' '}${formatTarget(e.target, e.bracket)}${e.pad}`,
            )
            lines.push(n)
          }
          const table = parseTokenFile(lines.join(crlf ? '\r\n' : '\n'), FILE)
          const expected = new Map(entries.map(([e]) => [tokenKey(e.token), e.target]))
          expect(table).toEqual(expected)
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('one bad line among valid ones is reported with its own line number', () => {
    const bad = fc.constantFrom(
      'no-separator-here',
      'two: seps: here',
      ': 127.0.0.1:1',
      'tok: 127.0.0.1:0',
      'tok: 127.0.0.1:65536',
      'tok: host',
      'tok: [::1]',
      'tok: unix_socket:',
      'tok: [::1:5900',
    )
    fc.assert(
      fc.property(
        fc.array(fc.tuple(token, target), { maxLength: 6 }),
        fc.nat(),
        bad,
        (entries, at, badLine) => {
          const lines = entries.map(([t, g]) => `${t}: ${formatTarget(g, true)}`)
          const index = at % (lines.length + 1)
          lines.splice(index, 0, badLine)
          const result = parseOrLineError(lines.join('\n'))
          expect(result).toBeInstanceOf(ConfigError)
          expect((result as ConfigError).message).toContain(`${FILE}:${index + 1}: `)
        },
      ),
      { numRuns: RUNS },
    )
  })
})
