/**
 * @module config/websockify-plugins
 * websockify's `--token-plugin NAME --token-source SOURCE` as aliases of Gangway's own options, so a
 * websockify command line keeps working: TokenFile and ReadOnlyTokenFile → `tokenFile`, TokenFileName →
 * `tokenDir`, JWTTokenApi → `jwtKey` (an HMAC key file read as base64url, as websockify does), TokenRedis →
 * `tokenRedis`, JSONTokenApi → `tokenApi`. Pure.
 */
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from '../errors.js'

export const TOKEN_PLUGINS = [
  'TokenFile',
  'ReadOnlyTokenFile',
  'TokenFileName',
  'JWTTokenApi',
  'TokenRedis',
  'JSONTokenApi',
] as const

type Field = 'tokenFile' | 'tokenDir' | 'jwtKey' | 'tokenRedis' | 'tokenApi'

const TARGET_FIELD: Record<(typeof TOKEN_PLUGINS)[number], Field> = {
  TokenFile: 'tokenFile',
  ReadOnlyTokenFile: 'tokenFile',
  TokenFileName: 'tokenDir',
  JWTTokenApi: 'jwtKey',
  TokenRedis: 'tokenRedis',
  JSONTokenApi: 'tokenApi',
}

const PATH_FIELDS = new Set<Field>(['tokenFile', 'tokenDir', 'jwtKey'])

/**
 * Rewrites `tokenPlugin` + `tokenSource` into the option they stand for.
 * @throws {ConfigError} when one comes without the other, or the option is also given directly.
 */
export function applyTokenPlugin<T extends Record<string, unknown>>(options: T, cwd: string): T {
  const plugin = options['tokenPlugin'] as (typeof TOKEN_PLUGINS)[number] | undefined
  const source = options['tokenSource'] as string | undefined
  if (plugin === undefined && source === undefined) return options
  if (plugin === undefined) throw new ConfigError('--token-source needs --token-plugin')
  if (source === undefined) throw new ConfigError(`--token-plugin ${plugin} needs --token-source`)
  const field = TARGET_FIELD[plugin]
  if (options[field] !== undefined) {
    throw new ConfigError(`--token-plugin ${plugin} and ${field} both set the same thing: keep one`)
  }
  const value = PATH_FIELDS.has(field) ? resolvePath(cwd, source) : source
  return {
    ...options,
    [field]: value,
    ...(plugin === 'JWTTokenApi' ? { jwtSecretEncoding: 'base64url' } : {}),
  }
}
