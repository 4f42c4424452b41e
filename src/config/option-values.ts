/**
 * @module config/option-values
 * The value grammar of every `OptionKind` (seconds, sizes, counts, modes, choices, booleans, paths): one
 * parser per kind, shared by flags and config files so both report a bad value in the same words.
 * Re-exported by `config.ts`; pure apart from resolving relative paths.
 */
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from '../errors.js'

/** The kind of value an option takes; the CLI parses flag and file values with it. */
export type OptionKind =
  | 'seconds' // a non-negative number of seconds, decimals allowed; 0 turns the feature off where noted
  | 'bytes' // a positive size: 1048576, 1MiB, 512KiB, 4mb
  | 'count' // a non-negative integer
  | 'boolean'
  | 'string'
  | 'path'
  | 'prefix' // a path, absolute once parsed, whose trailing `/` (a directory) is kept
  | 'mode' // octal permission bits, e.g. 600 or 0660
  | 'list' // a repeatable string: the flag may be given several times, the file key holds a list
  | { choices: readonly string[] }

/** A parsed option value, as it lands in `Config`. */
export type OptionValue = number | string | boolean | readonly string[] | undefined

/** Longest duration a Node timer can hold (2^31-1 ms, about 24.8 days); longer ones fire after 1 ms. */
export const MAX_SECONDS = Math.floor((2 ** 31 - 1) / 1000)

/**
 * Size units, case-insensitive. IEC units are powers of 1024 (`KiB`, `MiB`, `GiB`); SI units are powers of
 * 1000 (`k`/`kB`, `m`/`MB`, `g`/`GB`), as their names say. `b` (or nothing) is bytes.
 */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
}

/**
 * Parses one option value, from a flag (always a string or boolean) or a config file (any JSON/YAML value),
 * into what `Config` holds: seconds become milliseconds, sizes bytes, modes numbers, paths absolute.
 * @param cwd directory relative paths resolve against (default: `process.cwd()`)
 * @throws {ConfigError} `expected <what>, got <value>`; the caller prefixes the flag or file key.
 */
export function parseOptionValue(kind: OptionKind, value: unknown, cwd?: string): OptionValue {
  if (typeof kind === 'object') return parseChoice(kind.choices, value)
  switch (kind) {
    case 'seconds':
      return parseSeconds(value)
    case 'bytes':
      return parseBytes(value)
    case 'count':
      return parseCount(value)
    case 'mode':
      return parseMode(value)
    case 'boolean':
      return parseBoolean(value)
    case 'string':
      return parseString(value)
    case 'path':
      return resolvePath(cwd ?? process.cwd(), parseString(value, 'a path (a non-empty string)'))
    case 'prefix': {
      const text = parseString(value, 'a path (a non-empty string)')
      const path = resolvePath(cwd ?? process.cwd(), text)
      return /[/\\]$/.test(text) && !/[/\\]$/.test(path) ? `${path}/` : path
    }
    case 'list':
      return parseList(value)
  }
}

/** Seconds (decimals allowed, e.g. 0.25) → whole milliseconds; a positive value never rounds down to 0. */
export function parseSeconds(value: unknown): number {
  const expected = 'seconds (a non-negative number)'
  const seconds =
    typeof value === 'string' && /^(\d+(\.\d*)?|\.\d+)$/.test(value) ? Number(value) : value
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0)
    invalid(expected, value)
  if (seconds > MAX_SECONDS) invalid(`at most ${MAX_SECONDS} seconds (about 24 days)`, value)
  const ms = Math.round(seconds * 1000)
  return ms === 0 && seconds > 0 ? 1 : ms
}

/** A positive whole number of bytes, with an optional unit (see `SIZE_UNITS`): `65536`, `512KiB`, `4mb`. */
export function parseBytes(value: unknown): number {
  const expected = 'a positive size in bytes (e.g. 65536, 512KiB, 1MiB, 4mb)'
  let bytes: number | undefined
  if (typeof value === 'number') bytes = value
  else if (typeof value === 'string') {
    const match = /^(\d+) ?([a-z]*)$/i.exec(value)
    const unit = match ? SIZE_UNITS[(match[2] ?? '').toLowerCase()] : undefined
    if (match && unit !== undefined) bytes = Number(match[1]) * unit
  }
  if (bytes === undefined || !Number.isSafeInteger(bytes) || bytes <= 0) invalid(expected, value)
  return bytes
}

/** A non-negative integer. */
export function parseCount(value: unknown): number {
  const count = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    invalid('a count (a non-negative integer)', value)
  }
  return count
}

/**
 * Octal permission bits: `600`, `0660`, `0o660`. A number is read by its decimal digits (JSON `600` and
 * YAML `0600` both arrive as the number 600 and mean 0o600).
 */
export function parseMode(value: unknown): number {
  const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value
  const match = typeof text === 'string' ? /^(?:0o?)?([0-7]{1,3})$/i.exec(text) : null
  if (!match?.[1]) return invalid('octal permission bits (e.g. 600 or 0660)', value)
  return parseInt(match[1], 8)
}

/** `true`/`false` (a file may also write them as strings). */
export function parseBoolean(value: unknown): boolean {
  if (value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  return invalid('true or false', value)
}

/** One of a fixed set of strings, case-sensitive. */
export function parseChoice(choices: readonly string[], value: unknown): string {
  if (typeof value === 'string' && choices.includes(value)) return value
  return invalid(`one of ${choices.join(', ')}`, value)
}

/** A repeatable value: one string (a flag given once) or a list of strings (repeated flag, file array). */
export function parseList(value: unknown): readonly string[] {
  const items = typeof value === 'string' ? [value] : value
  if (!Array.isArray(items)) return invalid('a string or a list of strings', value)
  return Object.freeze(items.map((item: unknown) => parseString(item)))
}

function parseString(value: unknown, expected = 'a non-empty string'): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) invalid(expected, value)
  return value
}

function invalid(expected: string, value: unknown): never {
  throw new ConfigError(`expected ${expected}, got ${describeValue(value)}`)
}

/** A value as it should be quoted back to the user: strings in quotes, others as JSON (cut short). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing'
  const json = JSON.stringify(value) ?? typeof value
  return json.length > 60 ? `${json.slice(0, 57)}...` : json
}
