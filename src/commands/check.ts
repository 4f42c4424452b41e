/**
 * @module commands/check
 * `gangway check` (like `nginx -t`): loads and validates everything the daemon would at startup (flags, the
 * config file, addresses, TLS certificate and key and that they match, the files of tls:// targets, the
 * admin token, the recording path, and the access gate: routes, target policy, origins, token files, key
 * files) without listening, then prints one summary line. Any problem is one line and exit 2, so
 * `systemctl reload` (ExecReload runs it first) fails visibly on a broken config.
 */
import { formatAddress } from '../config/address.js'
import { hasTokenSource, resolveConfig, type Config } from '../config/options.js'
import { createAccessFromConfig, createAccessState } from '../auth/from-config.js'
import { ConfigError } from '../errors.js'
import { loadTlsOptions, tlsSettings } from '../gateway/tls.js'
import { silentLogger } from '../log.js'
import { prepareRecording } from '../relay/record.js'
import { loadTargetTls } from '../targets/target-tls.js'
import { createPasswordStore } from '../targets/login/passwords.js'
import { EXIT_OK, type Args, type CommandSpec } from './command.js'
import {
  adminAddress,
  checkTlsOptions,
  checkWebRoot,
  configInput,
  daemonOptions,
  positional,
  readAdminToken,
} from './daemon-config.js'

export const checkCommand: CommandSpec = {
  command: 'check [LISTEN] [TARGET]',
  describe:
    'Check the configuration as the daemon would load it (flags, --config, files, keys, certificates, routes), without listening; exit 0 or 2.',
  builder: (y) => daemonOptions(positional(positional(y, 'LISTEN', 'listen'), 'TARGET', 'target')),
  run: runCheck,
}

async function runCheck(args: Args): Promise<number> {
  try {
    const input = await configInput(args, args['LISTEN'], args['TARGET'], 1)
    const config = resolveConfig(input)
    await checkWebRoot(config.webRoot, input)
    checkTlsOptions(config)
    const tls = tlsSettings(config)
    if (tls !== undefined) await loadTlsOptions(tls)
    loadTargetTls(config)
    createPasswordStore(config.routes, { watch: false }).close() // routes' login password files
    const adminAt = adminAddress(config.admin)
    await readAdminToken(config, adminAt !== undefined)
    if (config.record !== undefined) {
      await prepareRecording(config.record, { create: false }).catch((err: Error) => {
        throw new ConfigError(`--record: ${err.message}`, { cause: err })
      })
    }
    // Builds the gate as the daemon does (reads token files and keys, checks routes and policy), then drops it.
    const access = await createAccessFromConfig(config, {
      logger: silentLogger,
      state: createAccessState(),
    })
    await access?.close()
    for (const warning of config.warnings ?? [])
      process.stderr.write(`gangway: warning: ${warning}\n`)
    process.stdout.write(`${summary(config, args['config'])}\n`)
    return EXIT_OK
  } catch (err) {
    if (err instanceof ConfigError || !(err instanceof Error)) throw err
    // Every problem check finds is a configuration problem: exit 2, one line.
    throw new ConfigError(err.message, { cause: err })
  }
}

/** One line: what the daemon would serve, from where, to what. */
function summary(config: Config, file: unknown): string {
  const parts = [`listen ${formatAddress(config.listen)}`]
  if (config.target !== undefined) parts.push(`target ${formatAddress(config.target)}`)
  if (config.routes !== undefined) parts.push(`${config.routes.size} route(s)`)
  const sources = [
    config.tokenFile && 'token file',
    config.tokenDir && 'token directory',
    (config.jwtKey ?? config.jwksUrl) && 'signed tokens',
    config.tokenApi && 'token API',
    config.tokenRedis && 'Redis tokens',
    config.clientTargets && 'client targets',
  ].filter((s): s is string => typeof s === 'string')
  if (sources.length > 0) parts.push(sources.join(', '))
  if (!hasTokenSource(config) && config.target === undefined) parts.push('no target')
  if (config.tlsCert !== undefined) parts.push('TLS')
  if (config.admin !== undefined) parts.push(`admin ${config.admin}`)
  const where = typeof file === 'string' ? ` ${file}` : ''
  return `gangway check: configuration${where} OK: ${parts.join('; ')}`
}
