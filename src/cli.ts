/**
 * @module cli
 * The `gangway` command line: yargs → validated `Config` → a running daemon that drains on SIGTERM/SIGINT.
 * The only module that writes usage errors to stderr, picks exit codes (2 usage, 1 startup, 130/143 on a
 * second signal) or calls `process.exit`. Subcommands live in `COMMANDS`; each parses its own options.
 */
import { readFile, stat } from 'node:fs/promises'
import yargs, { type Argv, type ArgumentsCamelCase } from 'yargs'
import { formatAddress, parseListen, parseTarget } from './address.js'
import { readConfigFile, type ConfigFile } from './config-file.js'
import {
  describeDefault,
  OPTIONS,
  parseBoolean,
  resolveConfig,
  resolveOptions,
  type Config,
  type OptionSpec,
  type ResolveInput,
} from './config.js'
import { createAccessFromConfig, createAccessState } from './auth/from-config.js'
import { ConfigError, GangwayError } from './errors.js'
import { createLogger, type Logger } from './log.js'
import { createTunnelServer, type TunnelServer } from './server.js'
import { loadTargetTls } from './target-tls.js'
import { createAdminServer, type AdminServer } from './admin.js'
import { createMetrics } from './metrics.js'
import { attachState, createStateFromConfig } from './state/from-config.js'
import cluster from 'node:cluster'
import { startPrimary, workerContext, workerCount } from './cluster.js'
import { combineReports, createReloader, logReloadReport } from './reload.js'
import type { ListenAddress, LogFormat, LogLevel } from './config.js'
import { VERSION } from './version.js'

/** Exit codes: 0 after a clean drain, 1 when startup fails, 2 for a usage or configuration error. */
const EXIT_OK = 0
const EXIT_STARTUP = 1
const EXIT_USAGE = 2
/** A second signal during the drain exits at once with 128 + the signal number, as shells report it. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const
type StopSignal = keyof typeof SIGNAL_EXIT_CODES
const STOP_SIGNALS = Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]

const DEMO_LISTEN = '127.0.0.1:6080'

type Args = ArgumentsCamelCase<Record<string, unknown>>

/** One subcommand: yargs declaration plus what runs once the whole command line has parsed. */
interface CommandSpec {
  command: string
  describe: string
  builder: (y: Argv) => Argv
  run: (args: Args) => Promise<number>
}

const COMMANDS: readonly CommandSpec[] = [
  {
    command: '$0 [LISTEN] [TARGET]',
    describe: 'Relay WebSocket connections on LISTEN to the TCP (or unix socket) TARGET.',
    builder: (y) =>
      daemonOptions(positional(positional(y, 'LISTEN', 'listen'), 'TARGET', 'target')),
    run: runServe,
  },
  {
    command: 'demo [LISTEN]',
    describe: `Run the embedded chat demo behind the gateway (LISTEN defaults to ${DEMO_LISTEN}).`,
    builder: (y) => daemonOptions(positional(y, 'LISTEN', 'listen')),
    run: runDemo,
  },
  {
    command: 'client',
    describe:
      'Native tools through the gateway: a local listener (--listen) or stdin/stdout (--stdio) tunnelled to --url.',
    builder: (y) =>
      y
        .option('url', {
          type: 'string',
          describe: 'The daemon: ws://host:port/ or wss://host/path.',
        })
        .option('listen', {
          type: 'string',
          describe:
            'Local address to listen on: [host:]port (a bare port is loopback only) or unix:/path.',
        })
        .option('stdio', {
          type: 'boolean',
          describe: 'One tunnel on stdin/stdout (ssh ProxyCommand).',
        })
        .option('token', {
          type: 'string',
          describe: 'Token (visible in ps: prefer --token-file or GANGWAY_TOKEN).',
        })
        .option('token-file', { type: 'string', describe: 'File whose first line is the token.' })
        .option('token-in', {
          type: 'string',
          describe: 'Where the token travels: header (Authorization, default) or subprotocol.',
        })
        .option('target', {
          type: 'string',
          describe: 'host:port for the daemon to dial, if it allows client-named targets.',
        })
        .option('ca', {
          type: 'string',
          describe: 'PEM CA bundle to trust for wss: (instead of the system store).',
        })
        .option('servername', {
          type: 'string',
          describe: 'TLS server name, when it differs from the URL host.',
        })
        .option('insecure', {
          type: 'boolean',
          describe: 'Do not check the gateway certificate (labs only).',
        })
        .option('log-level', {
          type: 'string',
          describe: 'debug, info, warn, error or silent. Default: info.',
        })
        .option('log-format', { type: 'string', describe: 'auto, json or pretty. Default: auto.' }),
    run: runClient,
  },
  {
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
  },
  {
    command: 'revoke',
    describe:
      'Revoke a token on every node sharing --state-redis: refused from now on (4401), live tunnels closed (4410).',
    builder: (y) =>
      y
        .option('fingerprint', {
          type: 'string',
          describe:
            'The token’s fingerprint (8 hex characters), as logs and the admin API show it.',
        })
        .option('token-file', {
          type: 'string',
          describe: 'Or a file whose first line is the token (or set GANGWAY_TOKEN).',
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
  },
  {
    command: 'replay <FILE>',
    describe:
      'Print a session recording made with --record, or re-send its client side to a target with --to.',
    builder: (y) =>
      y
        .positional('FILE', {
          type: 'string',
          describe: 'A recording file (one tunnel, JSON Lines).',
        })
        .option('to', {
          type: 'string',
          describe:
            'Re-send the client → target bytes to this host:port or unix:/path instead of printing.',
        })
        .option('speed', {
          type: 'string',
          describe: 'With --to: replay this many times faster than recorded. Default: 1.',
        })
        .option('fast', {
          type: 'boolean',
          describe: 'With --to: send everything at once, no pauses.',
        })
        .option('hex', {
          type: 'boolean',
          describe: 'Show payload previews as hex instead of text.',
        }),
    run: runReplay,
  },
]

/** Usage problem reported by yargs itself (unknown flag, extra argument): printed with a --help hint. */
class UsageError extends Error {}

/**
 * Runs the CLI and resolves with the exit code (bin/gangway.js sets `process.exitCode` from it).
 * @example process.exitCode = await main(process.argv.slice(2))
 */
export async function main(argv: string[]): Promise<number> {
  let parsed: { output: string; run: (() => Promise<number>) | undefined }
  try {
    parsed = parseCommandLine(argv)
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof ConfigError)) throw err
    const hint = err instanceof UsageError ? ' (see gangway --help)' : ''
    return fail(EXIT_USAGE, `${err.message}${hint}`)
  }
  if (parsed.output !== '') process.stdout.write(`${parsed.output}\n`)
  if (parsed.run === undefined) return EXIT_OK // --help or --version
  try {
    return await parsed.run()
  } catch (err) {
    if (err instanceof ConfigError) return fail(EXIT_USAGE, err.message)
    if (err instanceof GangwayError) return fail(EXIT_STARTUP, err.message)
    throw err
  }
}

function fail(code: number, message: string): number {
  process.stderr.write(`gangway: ${message}\n`)
  return code
}

function parseCommandLine(argv: string[]): {
  output: string
  run: (() => Promise<number>) | undefined
} {
  checkBooleanValues(argv)
  let run: (() => Promise<number>) | undefined
  let output = ''
  const y = withUsageConfiguration(yargs(argv))
    .scriptName('gangway')
    // Repeated flags arrive as arrays: list options (--allow) keep them all, others keep the last one.
    .parserConfiguration({ 'duplicate-arguments-array': true })
    .strict()
    .exitProcess(false)
    .fail(function yargsOnFail(message: string | undefined, err: Error | undefined): never {
      throw new UsageError(
        rewriteYargsMessage(message ?? err?.message ?? 'invalid arguments', argv),
      )
    })
    .version(VERSION)
    .help()
    .alias('h', 'help')
    .epilog(
      'Durations are seconds (decimals allowed: 0.25). Sizes are bytes, optionally with a unit: ' +
        'KiB/MiB/GiB (1024-based) or k/MB/GB (1000-based). Every option may also be set in the ' +
        '--config file under its camelCase key. Reference: docs/cli.md',
    )
  for (const spec of COMMANDS) {
    y.command(spec.command, spec.describe, spec.builder, function commandOnParsed(args: Args) {
      run = () => spec.run(args)
    })
  }
  y.wrap(Math.min(100, y.terminalWidth() || 100))
  // With a callback, yargs hands over --help/--version text instead of printing it; it runs synchronously
  // because no handler or middleware is async.
  void y.parse(argv, {}, function yargsOnOutput(_err: unknown, _args: unknown, text: string) {
    output = text
  })
  return { output, run }
}

function positional(y: Argv, name: string, what: 'listen' | 'target'): Argv {
  const describe =
    what === 'listen'
      ? 'Listen address: [host:]port (a bare port listens on all interfaces) or unix:/path'
      : 'Target address: host:port ([v6]:port for IPv6) or unix:/path'
  return y.positional(name, { type: 'string', describe })
}

/** The daemon's options: `--config` plus one flag per `OPTIONS` entry, all parsed later by config.ts. */
function daemonOptions(y: Argv): Argv {
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
  return y
}

/** The help text of an option: its description, its choices if any, and its default. */
function describeOption(spec: OptionSpec): string {
  const choices = typeof spec.kind === 'object' ? ` One of: ${spec.kind.choices.join(', ')}.` : ''
  return `${spec.describe}${choices} Default: ${describeDefault(spec)}.`
}

/**
 * Hides yargs' `[string]`/`[boolean]` tags (every value is a string to yargs; config.ts gives it a type).
 * `usageConfiguration` exists since yargs 17.7; @types/yargs does not declare it yet.
 */
function withUsageConfiguration(y: Argv): Argv {
  const withUsage = y as Argv & { usageConfiguration?(config: { 'hide-types': boolean }): Argv }
  return withUsage.usageConfiguration?.({ 'hide-types': true }) ?? y
}

/** yargs reads `--compress=yes` as false without a word; insist on true/false like the config file does. */
function checkBooleanValues(argv: string[]): void {
  const end = argv.indexOf('--')
  for (const token of end === -1 ? argv : argv.slice(0, end)) {
    for (const spec of OPTIONS) {
      if (spec.kind !== 'boolean' || !token.startsWith(`--${spec.flag}=`)) continue
      try {
        parseBoolean(token.slice(spec.flag.length + 3))
      } catch (err) {
        throw new ConfigError(`--${spec.flag}: ${(err as Error).message}`)
      }
    }
  }
}

/** "Unknown arguments: hb, x" → "unknown option --hb" or `unexpected argument "x"` (first one only). */
function rewriteYargsMessage(message: string, argv: string[]): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message)
  const name = unknown?.[1]?.split(', ')[0]
  if (name === undefined) return message
  const flag = argv.find((t) => /^-/.test(t) && t.replace(/^-+/, '').split('=')[0] === name)
  return flag
    ? `unknown option ${flag.split('=')[0]}`
    : `unexpected argument ${JSON.stringify(name)}`
}

/** Reads `--config` (if any) and the option flags into the input of `resolveConfig`. */
async function configInput(args: Args, listen: unknown, target: unknown): Promise<ResolveInput> {
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
  return {
    file: file?.values,
    fileName: file?.fileName,
    flags,
    listen: typeof listen === 'string' ? listen : undefined,
    target: typeof target === 'string' ? target : undefined,
  }
}

/** `--web` must name a directory that exists: checked before anything listens. */
async function checkWebRoot(webRoot: string | undefined, input: ResolveInput): Promise<void> {
  if (webRoot === undefined) return
  const info = await stat(webRoot).catch(() => undefined)
  if (info?.isDirectory()) return
  const source = input.flags['web'] !== undefined ? '--web' : `config ${input.fileName}: web`
  const problem = info === undefined ? 'no such directory' : 'not a directory'
  throw new ConfigError(`${source}: ${problem} ${JSON.stringify(webRoot)}`)
}

async function runServe(args: Args): Promise<number> {
  const input = await configInput(args, args['LISTEN'], args['TARGET'])
  const config = resolveConfig(input)
  await checkWebRoot(config.webRoot, input)
  // SIGHUP re-reads the file, with the same flags and positionals on top (see reload.ts).
  const loadConfig =
    args['config'] === undefined
      ? undefined
      : async () => resolveConfig(await configInput(args, args['LISTEN'], args['TARGET']))
  return runDaemon(config, { loadConfig })
}

async function runDemo(args: Args): Promise<number> {
  const input = await configInput(args, args['LISTEN'], undefined)
  // The demo brings its own target: a config file's `target` is ignored.
  const resolved = resolveOptions(input)
  const { options } = resolved
  const listen = resolved.listen ?? parseListen(DEMO_LISTEN)
  await checkWebRoot(options.webRoot, input)
  const { startDemoService, DEMO_WEB_ROOT } = await import('./demo.js')
  const demo = await startDemoService().catch(function demoOnError(err: unknown): never {
    const why = err instanceof Error ? err.message : String(err)
    throw new GangwayError('ERR_LISTEN', `cannot start the demo service: ${why}`, { cause: err })
  })
  const config: Config = Object.freeze({
    ...options,
    listen,
    target: demo.target,
    webRoot: options.webRoot ?? DEMO_WEB_ROOT,
    workers: 1, // one chat room: the demo service lives in this process
  })
  try {
    return await runDaemon(config, {
      afterListen(server, logger) {
        const url = server.url().replace(/^ws/, 'http')
        logger.info(`demo ready: open ${url} in a browser`, { url })
      },
    })
  } finally {
    await demo.close()
  }
}

/** A subcommand's string option: undefined when absent, a usage error when given empty. */
function stringOption(args: Args, name: string): string | undefined {
  const value = args[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '')
    throw new ConfigError(`--${name}: expected a value`)
  return value
}

async function runClient(args: Args): Promise<number> {
  const { runStdio, startClientListener } = await import('./client.js')
  const text = (name: string): string | undefined => stringOption(args, name)
  const url = text('url')
  if (url === undefined) throw new ConfigError('client: --url is required (ws://… or wss://…)')
  if (!/^wss?:\/\/[^/]/.test(url))
    throw new ConfigError(`--url: expected ws://… or wss://…, got ${JSON.stringify(url)}`)
  const stdio = args['stdio'] === true
  const listenText = text('listen')
  if (stdio === (listenText !== undefined))
    throw new ConfigError('client: give exactly one of --listen and --stdio')
  const tokenInText = text('token-in') ?? 'header'
  if (tokenInText !== 'header' && tokenInText !== 'subprotocol') {
    throw new ConfigError(
      `--token-in: expected header or subprotocol, got ${JSON.stringify(tokenInText)}`,
    )
  }
  const tokenIn: 'header' | 'subprotocol' = tokenInText
  let token = text('token')
  const tokenFile = text('token-file')
  if (token === undefined && tokenFile !== undefined) {
    const raw = await readFile(tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`--token-file: cannot read ${tokenFile} (${err.code ?? err.message})`)
    })
    token = raw.split('\n', 1)[0]?.trim() || undefined
    if (token === undefined) throw new ConfigError(`--token-file: ${tokenFile} is empty`)
  }
  token ??= process.env['GANGWAY_TOKEN'] || undefined
  const caFile = text('ca')
  const ca =
    caFile === undefined
      ? undefined
      : await readFile(caFile).catch((err: NodeJS.ErrnoException) => {
          throw new ConfigError(`--ca: cannot read ${caFile} (${err.code ?? err.message})`)
        })
  const target = text('target')
  if (target !== undefined) parseTarget(target, { label: '--target' })
  const options = {
    url,
    token,
    tokenIn,
    target,
    ca,
    servername: text('servername'),
    insecure: args['insecure'] === true,
  }
  if (stdio) return runStdio(options, process.stderr)

  const level = text('log-level') ?? 'info'
  const format = text('log-format') ?? 'auto'
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level))
    throw new ConfigError(`--log-level: unknown level ${JSON.stringify(level)}`)
  if (!['auto', 'json', 'pretty'].includes(format))
    throw new ConfigError(`--log-format: unknown format ${JSON.stringify(format)}`)
  const logger = createLogger({ level: level as LogLevel, format: format as LogFormat })
  let where = parseListen(listenText!, { label: '--listen' })
  if (where.kind === 'tcp' && where.host === undefined) where = { ...where, host: '127.0.0.1' }
  const listener = await startClientListener(where, options, logger).catch(
    (err: NodeJS.ErrnoException) => {
      throw new GangwayError(
        'ERR_LISTEN',
        `cannot listen on ${listenText!} (${err.code ?? err.message})`,
        { cause: err },
      )
    },
  )
  logger.info('client listening', { listen: formatAddress(listener.address()), url, tokenIn })
  const stop = watchStopSignals(logger)
  try {
    await stop.signalled
    await listener.close()
    return EXIT_OK
  } finally {
    stop.dispose()
  }
}

async function runToken(args: Args): Promise<number> {
  const { mintToken } = await import('./token.js')
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

async function runRevoke(args: Args): Promise<number> {
  const { revokeToken } = await import('./revoke.js')
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
    const raw = await readFile(tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`--token-file: cannot read ${tokenFile} (${err.code ?? err.message})`)
    })
    token = raw.split('\n', 1)[0]?.trim() || undefined
    if (token === undefined) throw new ConfigError(`--token-file: ${tokenFile} is empty`)
  } else if (fingerprint === undefined) {
    token = process.env['GANGWAY_TOKEN'] || undefined
  }
  if ((token === undefined) === (fingerprint === undefined))
    throw new ConfigError(
      'revoke: give exactly one of --fingerprint and --token-file (or GANGWAY_TOKEN)',
    )
  const ttl = text('ttl')
  const line = await revokeToken({
    stateRedis,
    statePrefix: text('state-prefix') ?? fromFile('statePrefix') ?? 'gangway:',
    token,
    fingerprint,
    ttlSeconds: ttl === undefined ? undefined : ttl === '0' ? 0 : parseSeconds(ttl, '--ttl'),
  })
  process.stdout.write(line + '\n')
  return EXIT_OK
}

function parseSeconds(value: string, label: string): number {
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) {
    throw new ConfigError(
      `${label}: expected a positive number of seconds, got ${JSON.stringify(value)}`,
    )
  }
  return n
}

function parsePositiveCount(value: string, label: string): number {
  if (!/^[1-9]\d*$/.test(value)) {
    throw new ConfigError(
      `${label}: expected a positive whole number, got ${JSON.stringify(value)}`,
    )
  }
  return Number(value)
}

async function runReplay(args: Args): Promise<number> {
  const file = String(args['FILE'])
  const { printRecording, resendRecording } = await import('./replay.js')
  if (args['to'] === undefined) {
    if (args['speed'] !== undefined || args['fast'] !== undefined) {
      throw new ConfigError('--speed and --fast go with --to')
    }
    await printRecording(file, process.stdout, { hex: args['hex'] === true })
    return EXIT_OK
  }
  const to = args['to']
  if (typeof to !== 'string')
    throw new ConfigError('--to: expected an address (host:port or unix:/path)')
  const target = parseTarget(to, { label: '--to' })
  if (target.kind === 'tcp' && target.tls === true)
    throw new ConfigError('--to: replay sends plain TCP; a tls:// target is not supported')
  let speed = 1
  if (args['fast'] === true) speed = Infinity
  else if (args['speed'] !== undefined) {
    speed = Number(args['speed'])
    if (!(speed > 0) || !Number.isFinite(speed)) {
      throw new ConfigError(
        `--speed: expected a positive number, got ${JSON.stringify(args['speed'])}`,
      )
    }
  }
  const { sent, received } = await resendRecording(file, target, { speed })
  process.stdout.write(`replayed ${sent} B to ${formatAddress(target)}; received ${received} B\n`)
  return EXIT_OK
}

interface DaemonHooks {
  afterListen?(server: TunnelServer, logger: Logger): void
  /** Reads the config again for a SIGHUP reload; without it SIGHUP re-reads token sources and TLS files. */
  loadConfig?: () => Promise<Config>
}

/** Listens, logs the startup line, then waits for SIGTERM/SIGINT and drains. SIGHUP reloads (reload.ts). */
async function runDaemon(config: Config, hooks: DaemonHooks): Promise<number> {
  checkTlsOptions(config)
  // Read (and validate) the files of tls:// targets before anything is opened: a bad one is a usage error.
  const targetTls = loadTargetTls(config)
  const adminAt = adminAddress(config.admin)
  const adminToken = await readAdminToken(config, adminAt !== undefined)
  const count = workerCount(config)
  if (count > 1 && cluster.isPrimary) return runPrimary(config, count, adminAt, adminToken)
  const worker = workerContext()
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    fields: worker === undefined ? undefined : { worker: worker.index },
  })
  // Workers record metrics for the primary's admin listener to aggregate.
  const metrics = adminAt === undefined ? undefined : createMetrics()
  // Shared by several nodes through Redis (--state-redis), if configured.
  const shared = await createStateFromConfig(config, {
    logger,
    registry: metrics?.registry,
    subscribe: true,
  })
  // What every gate inherits from the one before it (a SIGHUP reload builds a new gate).
  const accessState = createAccessState()
  const access = await createAccessFromConfig(config, { logger, state: accessState, shared }).catch(
    async (err: unknown) => {
      await shared?.close()
      throw err
    },
  )
  const idSpace = worker === undefined ? undefined : { index: worker.index, count: worker.count }
  const server = createTunnelServer(config, {
    logger,
    metrics,
    idSpace,
    access,
    targetTls,
    isRevoked: shared === undefined ? undefined : (print) => shared.heardRevoked(print),
  })
  if (shared !== undefined) attachState(shared, server)
  const reloader = createReloader({
    config,
    load: hooks.loadConfig,
    server,
    access,
    state: accessState,
    shared,
    logger,
    setLogLevel: (level) => logger.setLevel(level),
    configReloaded: (ok) => metrics?.configReloaded(ok),
  })
  let admin: AdminServer | undefined
  const stop = watchStopSignals(logger)
  // Workers reload when the primary forwards its SIGHUP, and the primary logs the outcome.
  const hangup =
    worker === undefined
      ? watchHangup(logger, () => void reloader.reload().then((r) => logReloadReport(logger, r)))
      : undefined
  try {
    await server.listen()
    if (worker !== undefined) {
      worker.ready(server, metrics, () => reloader.reload(), shared)
    } else {
      if (adminAt !== undefined && metrics !== undefined) {
        admin = createAdminServer(adminAt, server, metrics, {
          token: adminToken,
          logger,
          state: shared,
        })
        await admin.listen()
      }
      logger.info('listening', {
        version: VERSION,
        listen: formatAddress(server.address()),
        ...describeRouting(config),
        tls: config.tlsCert === undefined ? undefined : true,
        admin: admin === undefined ? undefined : formatAddress(admin.address()),
        web: config.webRoot,
      })
      hooks.afterListen?.(server, logger)
    }
    // A worker drains when the primary asks (over IPC) or on its own signal (a terminal's Ctrl-C).
    const signal = await (worker === undefined
      ? stop.signalled
      : Promise.race([stop.signalled, worker.drainRequested.then(() => 'primary' as const)]))
    // close() stops accepting before it returns, so "draining" is only logged once new connections fail.
    // The admin listener stays up meanwhile: /readyz answers 503 so load balancers move away.
    const { drainTimeoutMs } = reloader.current()
    const closed = server.close({ drainTimeoutMs })
    logger.info('draining', {
      signal,
      tunnels: server.stats().tunnels,
      timeoutSeconds: drainTimeoutMs / 1000,
    })
    await closed
    logger.info('stopped')
    return EXIT_OK
  } finally {
    worker?.dispose()
    stop.dispose()
    hangup?.()
    await admin?.close()
    await server.close({ drainTimeoutMs: 0 })
    await reloader.close()
    await shared?.close()
  }
}

/** What the daemon routes to, for the startup line: a fixed target, named routes, token sources. */
function describeRouting(config: Config): Record<string, unknown> {
  return {
    target: config.target === undefined ? undefined : formatAddress(config.target),
    routes: config.routes === undefined ? undefined : [...config.routes.keys()],
    tokenFile: config.tokenFile,
    tokenDir: config.tokenDir,
  }
}

/**
 * The primary of `--workers N`: forks the workers (which listen), serves the admin listener for all of them,
 * forwards SIGHUP, and on SIGTERM/SIGINT asks every worker to drain and waits for them; a second signal
 * ends them all at once.
 */
async function runPrimary(
  config: Config,
  count: number,
  adminAt: ListenAddress | undefined,
  adminToken: string | undefined,
): Promise<number> {
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    fields: { worker: 'primary' },
  })
  // The primary holds no tunnels: its connection serves /readyz and POST /api/revoke.
  const state = await createStateFromConfig(config, { logger, subscribe: false })
  const primary = startPrimary(count, logger)
  const stop = watchStopSignals(logger, () => primary.kill())
  function processOnSighup(): void {
    logger.info('SIGHUP: reloading', { workers: count })
    void primary.reload().then(function primaryOnReloaded(reports) {
      const report = combineReports(reports)
      if (report.ok && report.logLevel !== undefined) logger.setLevel(report.logLevel)
      logReloadReport(logger, report, { workers: reports.length })
    })
  }
  process.on('SIGHUP', processOnSighup)
  let admin: AdminServer | undefined
  try {
    let address: ListenAddress
    try {
      address =
        (await Promise.race([primary.listening, stop.signalled.then(() => undefined)])) ??
        config.listen
    } catch (err) {
      throw new GangwayError('ERR_LISTEN', (err as Error).message, { cause: err })
    }
    if (adminAt !== undefined) {
      admin = createAdminServer(adminAt, primary.admin, primary.admin, {
        token: adminToken,
        logger,
        state,
      })
      await admin.listen()
    }
    logger.info('listening', {
      version: VERSION,
      listen: formatAddress(address),
      ...describeRouting(config),
      workers: count,
      tls: config.tlsCert === undefined ? undefined : true,
      admin: admin === undefined ? undefined : formatAddress(admin.address()),
      web: config.webRoot,
    })
    const signal = await stop.signalled
    logger.info('draining', {
      signal,
      workers: count,
      timeoutSeconds: config.drainTimeoutMs / 1000,
    })
    await primary.drain()
    logger.info('stopped')
    return EXIT_OK
  } catch (err) {
    primary.kill()
    throw err
  } finally {
    process.off('SIGHUP', processOnSighup)
    stop.dispose()
    await admin?.close()
    await state?.close()
  }
}

/** `--key`/`--tls-ciphers` only make sense with `--cert`: say so instead of silently serving plain ws:. */
function checkTlsOptions(config: Config): void {
  if (config.tlsCert !== undefined) return
  if (config.tlsKey !== undefined)
    throw new ConfigError('--key needs --cert (the certificate to serve)')
  if (config.tlsCiphers !== undefined) throw new ConfigError('--tls-ciphers needs --cert')
}

/** The admin address; a bare port means loopback only (metrics are not for the world unless asked). */
function adminAddress(value: string | undefined): ListenAddress | undefined {
  if (value === undefined) return undefined
  const parsed = parseListen(value, { label: '--admin' })
  if (parsed.kind === 'tcp' && parsed.host === undefined) return { ...parsed, host: '127.0.0.1' }
  return parsed
}

/**
 * The admin token from `--admin-token-file` (first line, trimmed) or `GANGWAY_ADMIN_TOKEN`; never from a flag
 * value, which `ps` would show to every user of the machine.
 */
async function readAdminToken(config: Config, hasAdmin: boolean): Promise<string | undefined> {
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

/** SIGHUP reloads the config (or, without --config, certificates and token sources); see reload.ts. */
function watchHangup(logger: Logger, reload: () => void): () => void {
  function processOnHangup(): void {
    logger.info('SIGHUP: reloading')
    reload()
  }
  process.on('SIGHUP', processOnHangup)
  return () => void process.off('SIGHUP', processOnHangup)
}

/**
 * The first SIGTERM/SIGINT resolves `signalled` (the caller drains); a second one exits at once.
 * `dispose` removes the listeners, so an in-process `main()` leaves no trace on `process`.
 */
function watchStopSignals(
  logger: Logger,
  beforeExit: () => void = () => {},
): { signalled: Promise<StopSignal>; dispose(): void } {
  let received: StopSignal | undefined
  let resolveSignalled: (signal: StopSignal) => void = () => {}
  const signalled = new Promise<StopSignal>((resolve) => {
    resolveSignalled = resolve
  })
  function processOnStopSignal(signal: StopSignal): void {
    if (received === undefined) {
      received = signal
      resolveSignalled(signal)
      return
    }
    logger.warn('second signal: exiting without waiting for tunnels', { signal })
    beforeExit()
    process.exit(SIGNAL_EXIT_CODES[signal])
  }
  for (const signal of STOP_SIGNALS) process.on(signal, processOnStopSignal)
  return {
    signalled,
    dispose() {
      for (const signal of STOP_SIGNALS) process.off(signal, processOnStopSignal)
    },
  }
}
