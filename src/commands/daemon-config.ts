/**
 * @module commands/daemon-config
 * The daemon's command line and its checks before anything listens: one flag per `OPTIONS` entry, the
 * `--config` file under them, `--web`, TLS and admin settings, and the routing summary of the startup
 * line. Shared by the daemon, the `--workers` primary and `demo`.
 * Knows nothing of sockets: it checks and reports, the daemon listens.
 */
import { readFile, stat } from 'node:fs/promises'
import type { Argv } from 'yargs'
import { formatAddress, parseLoopbackListen } from '../config/address.js'
import { readConfigFile, type ConfigFile } from '../config/config-file.js'
import {
  describeDefault,
  OPTIONS,
  type Config,
  type ListenAddress,
  type OptionSpec,
  type ResolveInput,
} from '../config/options.js'
import type { AdminServer } from '../ops/admin.js'
import { applyWebsockifyFlags, WEBSOCKIFY_FLAGS } from '../config/websockify-flags.js'
import { ConfigError } from '../errors.js'
import { VERSION } from '../version.js'
import type { Args } from './command.js'

export function positional(y: Argv, name: string, what: 'listen' | 'target'): Argv {
  const describe =
    what === 'listen'
      ? 'Listen address: [host:]port (a bare port listens on all interfaces) or unix:/path'
      : 'Target address: host:port ([v6]:port for IPv6) or unix:/path'
  return y.positional(name, { type: 'string', describe })
}

/** The daemon's options: `--config` plus one flag per `OPTIONS` entry, all parsed later by config.ts. */
export function daemonOptions(y: Argv): Argv {
  y.option('config', {
    type: 'string',
    describe: 'Read options from this JSON or YAML file (flags and positionals override it).',
  })
  for (const spec of OPTIONS) {
    y.option(spec.flag, {
      type: spec.kind === 'boolean' ? 'boolean' : 'string',
      describe: describeOption(spec),
    })
  }
  // websockify's flags are understood (docs/cli.md#migrating-from-websockify) but not advertised.
  for (const spec of WEBSOCKIFY_FLAGS) {
    y.option(spec.flag, {
      type: spec.takesValue ? 'string' : 'boolean',
      hidden: true,
      ...(spec.short === undefined ? {} : { alias: spec.short }),
    })
  }
  return y
}

/** The help text of an option: its description, its choices if any, and its default. */
function describeOption(spec: OptionSpec): string {
  const choices = typeof spec.kind === 'object' ? ` One of: ${spec.kind.choices.join(', ')}.` : ''
  return `${spec.describe}${choices} Default: ${describeDefault(spec)}.`
}

/**
 * Reads `--config` (if any), the option flags and websockify's flags into the input of `resolveConfig`.
 * `commandWords`: how many words of `args._` name the subcommand (1 for `demo`, 0 for the daemon).
 */
export async function configInput(
  args: Args,
  listen: unknown,
  target: unknown,
  commandWords = 0,
): Promise<ResolveInput> {
  let file: ConfigFile | undefined
  if (args['config'] !== undefined) {
    const name = args['config']
    if (typeof name !== 'string' || name === '') {
      throw new ConfigError('--config: expected a file name')
    }
    file = await readConfigFile(name)
  }
  const flags: Record<string, unknown> = {}
  for (const spec of OPTIONS) {
    const value = args[spec.flag]
    if (value === undefined) continue
    flags[spec.key] = Array.isArray(value) && spec.kind !== 'list' ? value.at(-1) : value
  }
  const websockify = applyWebsockifyFlags(args, flags, {
    listen: typeof listen === 'string' ? listen : undefined,
    target: typeof target === 'string' ? target : undefined,
    // Words after `--` land in `_` (after the subcommand's name, if any): websockify's wrapped program.
    wrapped: args._.length > commandWords,
  })
  return {
    file: file?.values,
    fileName: file?.fileName,
    flags: websockify.flags,
    listen: websockify.listen,
    target: websockify.target,
    requireTls: websockify.requireTls,
  }
}

/** `--web` must name a directory that exists: checked before anything listens. */
export async function checkWebRoot(
  webRoot: string | undefined,
  input: ResolveInput,
): Promise<void> {
  if (webRoot === undefined) return
  const info = await stat(webRoot).catch(() => undefined)
  if (info?.isDirectory()) return
  const source = input.flags['web'] !== undefined ? '--web' : `config ${input.fileName}: web`
  const problem = info === undefined ? 'no such directory' : 'not a directory'
  throw new ConfigError(`${source}: ${problem} ${JSON.stringify(webRoot)}`)
}

/**
 * The fields of the startup line ("listening"), for the daemon and the `--workers` primary alike: the
 * addresses, what the daemon routes to (a fixed target, named routes, token sources), TLS and `--web`.
 */
export function listeningFields(
  config: Config,
  listen: ListenAddress,
  admin: AdminServer | undefined,
  workers?: number,
): Record<string, unknown> {
  return {
    version: VERSION,
    listen: formatAddress(listen),
    target: config.target === undefined ? undefined : formatAddress(config.target),
    routes: config.routes === undefined ? undefined : [...config.routes.keys()],
    tokenFile: config.tokenFile,
    tokenDir: config.tokenDir,
    workers,
    tls: config.tlsCert === undefined ? undefined : true,
    admin: admin === undefined ? undefined : formatAddress(admin.address()),
    web: config.webRoot,
    record: config.record,
    // Shown when it is not the default, so that `-v` (websockify) or a file's logLevel is visible.
    logLevel: config.logLevel === 'info' ? undefined : config.logLevel,
  }
}

/** `--key`/`--tls-ciphers` only make sense with `--cert`: say so instead of silently serving plain ws:. */
export function checkTlsOptions(config: Config): void {
  if (config.tlsCert !== undefined) return
  if (config.tlsKey !== undefined)
    throw new ConfigError('--key needs --cert (the certificate to serve)')
  if (config.tlsCiphers !== undefined) throw new ConfigError('--tls-ciphers needs --cert')
}

/** The admin address; a bare port means loopback only (metrics are not for the world unless asked). */
export function adminAddress(value: string | undefined): ListenAddress | undefined {
  return value === undefined ? undefined : parseLoopbackListen(value, { label: '--admin' })
}

/**
 * The admin token from `--admin-token-file` (first line, trimmed) or `GANGWAY_ADMIN_TOKEN`; never from a flag
 * value, which `ps` would show to every user of the machine.
 */
export async function readAdminToken(
  config: Config,
  hasAdmin: boolean,
): Promise<string | undefined> {
  const fromEnv = process.env['GANGWAY_ADMIN_TOKEN']
  const file = config.adminTokenFile
  if (file === undefined && (fromEnv === undefined || fromEnv === '')) return undefined
  if (!hasAdmin)
    throw new ConfigError('an admin token (--admin-token-file, GANGWAY_ADMIN_TOKEN) needs --admin')
  const source = file === undefined ? 'GANGWAY_ADMIN_TOKEN' : `--admin-token-file ${file}`
  let text = fromEnv ?? ''
  if (file !== undefined) {
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      throw new ConfigError(`${source}: cannot read the file (${code})`)
    }
  }
  const token = text.split('\n', 1)[0]?.trim() ?? ''
  if (token.length < 16)
    throw new ConfigError(`${source}: the admin token must be at least 16 characters`)
  return token
}
