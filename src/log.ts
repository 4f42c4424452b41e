/**
 * @module log
 * The Logger the rest of `src/` writes through (silent unless the CLI wires one), its JSON-lines and
 * readable-text sinks (pino underneath), `fingerprint()`, the only form in which a secret may be logged,
 * `logRejection()`, the error path of a promise nobody awaits, and `resolveNodeId()`, the node name every
 * daemon line carries. Imports nothing of Gangway but errors.ts: every layer may log.
 */
import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { pino, type DestinationStream } from 'pino'
import { ConfigError } from './errors.js'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFormat = 'auto' | 'json' | 'pretty'

export type LogFields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
}

function noop(): void {}

/** A logger that drops everything: the default for library use. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

export interface LoggerOptions {
  level: LogLevel
  format: LogFormat
  /** Where lines go (default: stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean }
  /** Fields added to every line (e.g. `{ worker: 2 }`). */
  fields?: LogFields
}

/** The daemon's logger: its level can change while it runs (a SIGHUP reload of `logLevel`). */
export interface LevelledLogger extends Logger {
  setLevel(level: LogLevel): void
}

/** Builds the daemon's logger: JSON lines, or readable text when `format` is pretty (or auto on a TTY). */
export function createLogger(options: LoggerOptions): LevelledLogger {
  const out = options.stream ?? process.stdout
  const pretty = options.format === 'pretty' || (options.format === 'auto' && out.isTTY === true)
  const fd = fdOf(out)
  let destination: DestinationStream
  if (pretty) destination = prettySink(out)
  else if (fd !== undefined) destination = pino.destination({ dest: fd, sync: true })
  else destination = out
  const base = pino(
    {
      level: options.level,
      base: options.fields ?? undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
  return {
    debug: (msg, fields) => base.debug(fields ?? {}, msg),
    info: (msg, fields) => base.info(fields ?? {}, msg),
    warn: (msg, fields) => base.warn(fields ?? {}, msg),
    error: (msg, fields) => base.error(fields ?? {}, msg),
    setLevel(level) {
      base.level = level
    },
  }
}

function fdOf(stream: NodeJS.WritableStream): number | undefined {
  const fd = (stream as { fd?: unknown }).fd
  return typeof fd === 'number' ? fd : undefined
}

/** Turns pino's JSON lines into `HH:MM:SS.mmm LEVEL msg key=value …` for people at a terminal. */
function prettySink(out: NodeJS.WritableStream): DestinationStream {
  return {
    write(line: string): void {
      let rec: LogFields
      try {
        rec = JSON.parse(line) as LogFields
      } catch {
        out.write(line)
        return
      }
      const { time, level, msg, ...rest } = rec
      const clock = typeof time === 'string' ? time.slice(11, 23) : ''
      const fields = Object.entries(rest)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? quoteIfNeeded(v) : JSON.stringify(v)}`)
        .join(' ')
      out.write(
        `${clock} ${String(level).toUpperCase().padEnd(5)} ${String(msg)}${fields ? ' ' + fields : ''}\n`,
      )
    },
  }
}

function quoteIfNeeded(v: string): string {
  return /^[\w.:/@[\]-]+$/.test(v) ? v : JSON.stringify(v)
}

/** First 8 hex digits of the SHA-256 of a secret: enough to correlate log lines, useless to an attacker. */
export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8)
}

/**
 * The error path of a promise nobody awaits (a listener's, a timer's, a signal's): a rejection is logged as
 * `message` with its error text and goes no further, so it can never end the process.
 * `promise.catch(logRejection(logger, 'tls certificate reload failed'))`
 */
export function logRejection(
  logger: Logger,
  message: string,
  fields: LogFields = {},
): (err: unknown) => void {
  return function loggedRejection(err: unknown): void {
    logger.error(message, { ...fields, error: err instanceof Error ? err.message : String(err) })
  }
}

/** What a node id may contain: it is written into every log line and shown on the status page. */
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/

/**
 * The node's name on every log line (`"node"`), so that `conn` ids, unique only within one node, can be
 * told apart once several nodes' logs are merged: `--node-id` when given, else the host name (cut to a
 * safe form). Every worker of a node resolves the same name.
 * @throws {ConfigError} for a `--node-id` with other characters or longer than 63.
 */
export function resolveNodeId(configured: string | undefined, host: string = hostname()): string {
  if (configured !== undefined) {
    if (!NODE_ID.test(configured)) {
      throw new ConfigError(
        `--node-id: expected 1 to 63 letters, digits, ".", "_", ":" or "-" (starting with a letter or digit), got ${JSON.stringify(configured.slice(0, 80))}`,
      )
    }
    return configured
  }
  const safe = host
    .replace(/[^A-Za-z0-9._:-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63)
  return safe === '' ? 'gangway' : safe
}
