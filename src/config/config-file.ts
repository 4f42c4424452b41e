/**
 * @module config/config-file
 * Reads a `--config` file into a plain key → value mapping: JSON for `.json`, YAML for `.yaml`/`.yml`,
 * otherwise JSON and then YAML. Every error names the file, and syntax errors their line and column.
 * It does not know the option keys: `resolveConfig` validates them.
 */
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { ConfigError } from '../errors.js'

export interface ConfigFile {
  /** The path as the user wrote it, for error messages. */
  fileName: string
  values: Record<string, unknown>
}

/**
 * Reads and parses a config file. An empty YAML file (or one with only comments) is an empty mapping.
 * @throws {ConfigError} `config <file>: <problem>` for unreadable files, syntax errors and a top level
 * that is not a mapping.
 */
export async function readConfigFile(fileName: string): Promise<ConfigFile> {
  let text: string
  try {
    text = await readFile(fileName, 'utf8')
  } catch (err) {
    throw new ConfigError(`config ${fileName}: cannot read it (${describeReadError(err)})`, {
      cause: err,
    })
  }
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  if (text.startsWith('\uFEFF')) text = text.slice(1)
  return { fileName, values: parseConfigText(text, fileName) }
}

/** Parses config text; `fileName` picks the syntax by extension and names the file in errors. */
export function parseConfigText(text: string, fileName: string): Record<string, unknown> {
  const ext = extname(fileName).toLowerCase()
  const fail = (problem: string): never => {
    throw new ConfigError(`config ${fileName}: ${problem}`)
  }
  let value: unknown
  if (ext === '.json') {
    value = parseJson(text, fail)
  } else if (ext === '.yaml' || ext === '.yml') {
    value = parseYaml(text, fail)
  } else {
    try {
      value = JSON.parse(text) as unknown
    } catch {
      value = parseYaml(text, fail)
    }
  }
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    fail(`expected a mapping of option keys at the top level, got ${topLevelKind(value)}`)
  }
  return value as Record<string, unknown>
}

type Fail = (problem: string) => never

function parseJson(text: string, fail: Fail): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    const { offset, problem } = locateJsonError(text)
    const { line, column } = lineAndColumn(text, offset)
    return fail(`invalid JSON at line ${line}, column ${column}: ${problem}`)
  }
}

function parseYaml(text: string, fail: Fail): unknown {
  const docs = parseAllDocuments(text)
  if (!Array.isArray(docs)) return null // only comments or nothing at all
  if (docs.length > 1) fail(`expected one YAML document, found ${docs.length}`)
  const doc = docs[0]
  if (doc === undefined) return null
  const error = doc.errors[0]
  if (error) {
    // yaml's messages are "<what> at line L, column C:" followed by a code excerpt; keep the first line.
    const first = (error.message.split('\n')[0] ?? error.message).replace(/:$/, '')
    fail(`invalid YAML: ${first}`)
  }
  try {
    // toJS resolves aliases: an unknown one, or an alias bomb (yaml caps their expansion), throws here.
    return doc.toJS() as unknown
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    return fail(`invalid YAML: ${message.split('\n')[0] ?? message}`)
  }
}

function topLevelKind(value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  return typeof value === 'string' ? 'a string' : `${typeof value} ${JSON.stringify(value)}`
}

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'it is a directory'
  return err instanceof Error ? err.message : String(err)
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, column: offset - before.lastIndexOf('\n') }
}

/**
 * Finds the first JSON syntax error, because V8's messages do not always carry a position.
 * A small recursive-descent scan of RFC 8259; only called after `JSON.parse` has failed.
 */
export function locateJsonError(text: string): { offset: number; problem: string } {
  let i = 0
  class Stop extends Error {
    constructor(readonly problem: string) {
      super(problem)
    }
  }
  const stop = (problem: string): never => {
    throw new Stop(problem)
  }
  const unexpected = (): never =>
    stop(i >= text.length ? 'unexpected end of input' : `unexpected ${JSON.stringify(text[i])}`)
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] as string)) i++
  }
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length
    else unexpected()
  }
  const string = (): void => {
    i++ // opening quote
    for (;;) {
      const c = text[i]
      if (c === undefined) stop('unterminated string')
      if (c === '"') break
      if (c === '\\') {
        i++
        if (text[i] === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) i += 4
        else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) stop('invalid escape in string')
      } else if ((c as string).charCodeAt(0) < 0x20) stop('control character in string')
      i++
    }
    i++
  }
  const number = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i))
    if (!match) unexpected()
    else i += match[0].length
  }
  const value = (depth: number): void => {
    if (depth > 1000) stop('nested too deeply')
    skipSpace()
    const c = text[i]
    if (c === '{') return members('}', depth, true)
    if (c === '[') return members(']', depth, false)
    if (c === '"') return string()
    if (c === 't') return literal('true')
    if (c === 'f') return literal('false')
    if (c === 'n') return literal('null')
    return number()
  }
  function members(close: string, depth: number, keyed: boolean): void {
    i++
    skipSpace()
    if (text[i] === close) {
      i++
      return
    }
    for (;;) {
      if (keyed) {
        skipSpace()
        if (text[i] !== '"') stop('expected a double-quoted key')
        string()
        skipSpace()
        if (text[i] !== ':') stop('expected ":" after a key')
        i++
      }
      value(depth + 1)
      skipSpace()
      if (text[i] === ',') {
        i++
        skipSpace()
        if (text[i] === close) stop(`trailing comma before "${close}"`)
        continue
      }
      if (text[i] === close) {
        i++
        return
      }
      unexpected()
    }
  }
  try {
    value(0)
    skipSpace()
    if (i < text.length) unexpected()
  } catch (err) {
    if (err instanceof Stop) return { offset: Math.min(i, text.length), problem: err.problem }
    throw err
  }
  return { offset: 0, problem: 'invalid JSON' } // JSON.parse disagreed with the scan (should not happen)
}
