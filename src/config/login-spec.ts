/**
 * @module config/login-spec
 * The grammar of a route's `login` mapping (`{ protocol, passwordFile, user?, database? }`): the daemon logs
 * in to the target for the client (docs/auth.md, "Logging in for the client"). The password file's path is
 * made absolute here; no file is read (targets/login/passwords.ts reads and watches them). Only the
 * operator's config file has this mapping: a token can name a route with a login, never carry a password.
 */
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from '../errors.js'
import { describeValue } from './option-values.js'

/** The protocols the daemon can log in with. */
export const LOGIN_PROTOCOLS = ['postgres', 'redis', 'vnc'] as const
export type LoginProtocol = (typeof LOGIN_PROTOCOLS)[number]

export interface LoginSpec {
  readonly protocol: LoginProtocol
  /** Absolute path of the file holding the password (one trailing newline is not part of it). */
  readonly passwordFile: string
  /** The user to log in as: required for postgres, optional for redis (ACL user), absent for vnc. */
  readonly user?: string
  /** postgres only: the database (default: the user's name, as PostgreSQL does). */
  readonly database?: string
}

const SPEC_KEYS = ['protocol', 'passwordFile', 'user', 'database']
/** Which optional keys each protocol takes. */
const TAKES: Record<LoginProtocol, readonly string[]> = {
  postgres: ['user', 'database'],
  redis: ['user'],
  vnc: [],
}

/**
 * Parses a route's `login` mapping; `passwordFile` resolves against `cwd`.
 * @throws {ConfigError} naming the key.
 */
export function parseLoginSpec(value: unknown, cwd: string = process.cwd()): LoginSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `expected a mapping { protocol, passwordFile, user?, database? }, got ${describeValue(value)}`,
    )
  }
  const fields = value as Record<string, unknown>
  for (const key of Object.keys(fields)) {
    if (key === 'password') {
      throw new ConfigError(
        'a password is never written in the config: put it in a file and name it with "passwordFile"',
      )
    }
    if (!SPEC_KEYS.includes(key)) {
      throw new ConfigError(`unknown key ${JSON.stringify(key)} (known: ${SPEC_KEYS.join(', ')})`)
    }
  }
  const protocol = fields['protocol']
  if (typeof protocol !== 'string' || !(LOGIN_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new ConfigError(
      `protocol: expected one of ${LOGIN_PROTOCOLS.join(', ')}, got ${describeValue(protocol)}`,
    )
  }
  const known = protocol as LoginProtocol
  for (const key of ['user', 'database']) {
    if (fields[key] !== undefined && !TAKES[known].includes(key)) {
      throw new ConfigError(`${key}: the ${known} login takes no ${key}`)
    }
  }
  const file = fields['passwordFile']
  if (typeof file !== 'string' || file === '') {
    throw new ConfigError(`passwordFile: expected a file path, got ${describeValue(file)}`)
  }
  const user = name('user', fields['user'])
  const database = name('database', fields['database'])
  if (known === 'postgres' && user === undefined) {
    throw new ConfigError('user: the postgres login needs the user to log in as')
  }
  return Object.freeze({
    protocol: known,
    passwordFile: resolvePath(cwd, file),
    ...(user === undefined ? {} : { user }),
    ...(database === undefined ? {} : { database }),
  })
}

/** A user or database name: a non-empty string without NUL (it travels in NUL-terminated fields). */
function name(key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '' || value.includes('\0') || value.length > 255) {
    throw new ConfigError(
      `${key}: expected a name (1-255 characters, no NUL), got ${describeValue(value)}`,
    )
  }
  return value
}
