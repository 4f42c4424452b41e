/**
 * @module commands/revoke
 * `gangway revoke`: revokes a token on every node sharing --state-redis (client/revoke.ts writes it).
 * Knows nothing of Redis keys (client/revoke.ts, state/revoke.ts).
 */
import { readConfigFile } from '../config/config-file.js'
import { DEFAULTS } from '../config/options.js'
import { ConfigError } from '../errors.js'
import {
  EXIT_OK,
  parseSeconds,
  readTokenFile,
  stringOption,
  type Args,
  type CommandSpec,
} from './command.js'

export const revokeCommand: CommandSpec = {
  command: 'revoke',
  describe:
    'Revoke a token on every node sharing --state-redis: refused from now on (4401), live tunnels closed (4410).',
  builder: (y) =>
    y
      .option('fingerprint', {
        type: 'string',
        describe: 'The token’s fingerprint (8 hex characters), as logs and the admin API show it.',
      })
      .option('token-file', {
        type: 'string',
        describe: 'Or a file whose first line is the token (or set GANGWAY_TOKEN).',
      })
      .option('undo', {
        type: 'boolean',
        describe:
          'End the token’s revocation now, on every node (a mis-click, or the token is safe again).',
      })
      .option('ttl', {
        type: 'string',
        describe:
          'Seconds the revocation lasts (0 = forever). Default: until a JWT expires, else 7 days.',
      })
      .option('state-redis', {
        type: 'string',
        describe: 'The daemons’ --state-redis URL (or from --config).',
      })
      .option('state-prefix', {
        type: 'string',
        describe: 'Their --state-prefix. Default: gangway:.',
      })
      .option('config', {
        type: 'string',
        describe: 'Read stateRedis and statePrefix from the daemons’ config file.',
      }),
  run: runRevoke,
}

async function runRevoke(args: Args): Promise<number> {
  const { revokeToken, undoRevocation } = await import('../client/revoke.js')
  const text = (name: string): string | undefined => stringOption(args, name)
  const configName = text('config')
  const file = configName === undefined ? undefined : (await readConfigFile(configName)).values
  const fromFile = (key: string): string | undefined =>
    typeof file?.[key] === 'string' ? file[key] : undefined
  const stateRedis = text('state-redis') ?? fromFile('stateRedis')
  if (stateRedis === undefined)
    throw new ConfigError('revoke: --state-redis (or a --config with stateRedis) is required')
  const fingerprint = text('fingerprint')
  const tokenFile = text('token-file')
  let token: string | undefined
  if (tokenFile !== undefined) {
    token = await readTokenFile(tokenFile)
  } else if (fingerprint === undefined) {
    token = process.env['GANGWAY_TOKEN'] || undefined
  }
  if ((token === undefined) === (fingerprint === undefined))
    throw new ConfigError(
      'revoke: give exactly one of --fingerprint and --token-file (or GANGWAY_TOKEN)',
    )
  const ttl = text('ttl')
  const statePrefix = text('state-prefix') ?? fromFile('statePrefix') ?? DEFAULTS.statePrefix
  if (args['undo'] === true) {
    if (ttl !== undefined) throw new ConfigError('revoke: --undo takes no --ttl')
    const line = await undoRevocation({ stateRedis, statePrefix, token, fingerprint })
    process.stdout.write(line + '\n')
    return EXIT_OK
  }
  const line = await revokeToken({
    stateRedis,
    statePrefix,
    token,
    fingerprint,
    ttlSeconds: ttl === undefined ? undefined : ttl === '0' ? 0 : parseSeconds(ttl, '--ttl'),
  })
  process.stdout.write(line + '\n')
  return EXIT_OK
}
