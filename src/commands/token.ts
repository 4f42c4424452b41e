/**
 * @module commands/token
 * `gangway token`: mints a signed token (JWT) for a daemon's --jwt-key (client/mint.ts) and prints only it.
 * Knows nothing of JWT formats (client/mint.ts).
 */
import { parseTarget } from '../config/address.js'
import { ConfigError } from '../errors.js'
import { EXIT_OK, parseSeconds, stringOption, type Args, type CommandSpec } from './command.js'

export const tokenCommand: CommandSpec = {
  command: 'token',
  describe:
    "Mint a signed token (JWT) for the daemon's --jwt-key: prints only the token, for scripts.",
  builder: (y) =>
    y
      .option('key', {
        type: 'string',
        describe:
          'The key file the daemon uses with --jwt-key: an HMAC secret, or a PEM private key.',
      })
      .option('target', {
        type: 'string',
        describe: 'What the token opens: host:port or unix:/path.',
      })
      .option('route', { type: 'string', describe: 'Or the name of a configured route.' })
      .option('ttl', {
        type: 'string',
        describe: 'Seconds until the token expires. Default: 300.',
      })
      .option('single-use', {
        type: 'boolean',
        describe: 'Add a jti: a daemon with --jwt-single-use refuses a second use.',
      })
      .option('max-connections', {
        type: 'string',
        describe: 'Tunnels this token may hold at once.',
      })
      .option('max-bytes', {
        type: 'string',
        describe:
          'Payload bytes one tunnel may carry (both ways); beyond it the daemon closes 4413.',
      })
      .option('idle-timeout', {
        type: 'string',
        describe: 'Seconds without payload before its tunnels close.',
      })
      .option('audience', {
        type: 'string',
        describe: "aud claim (match the daemon's --jwt-audience).",
      })
      .option('issuer', {
        type: 'string',
        describe: "iss claim (match the daemon's --jwt-issuer).",
      }),
  run: runToken,
}

async function runToken(args: Args): Promise<number> {
  const { mintToken } = await import('../client/mint.js')
  const text = (name: string): string | undefined => stringOption(args, name)
  const keyFile = text('key')
  if (keyFile === undefined)
    throw new ConfigError("token: --key is required (the daemon's --jwt-key file)")
  const target = text('target')
  const route = text('route')
  if ((target === undefined) === (route === undefined)) {
    throw new ConfigError('token: give exactly one of --target and --route')
  }
  if (target !== undefined) parseTarget(target, { label: '--target' })
  const ttl = text('ttl')
  const maxConnections = text('max-connections')
  const maxBytes = text('max-bytes')
  const idleTimeout = text('idle-timeout')
  const token = await mintToken({
    keyFile,
    target: (target ?? route)!,
    ttlSeconds: ttl === undefined ? 300 : parseSeconds(ttl, '--ttl'),
    singleUse: args['single-use'] === true,
    maxConnections:
      maxConnections === undefined
        ? undefined
        : parsePositiveCount(maxConnections, '--max-connections'),
    maxBytes: maxBytes === undefined ? undefined : parsePositiveCount(maxBytes, '--max-bytes'),
    idleTimeoutSeconds:
      idleTimeout === undefined ? undefined : parseSeconds(idleTimeout, '--idle-timeout'),
    audience: text('audience'),
    issuer: text('issuer'),
  })
  process.stdout.write(token + '\n')
  return EXIT_OK
}

function parsePositiveCount(value: string, label: string): number {
  if (!/^[1-9]\d*$/.test(value)) {
    throw new ConfigError(
      `${label}: expected a positive whole number, got ${JSON.stringify(value)}`,
    )
  }
  return Number(value)
}
