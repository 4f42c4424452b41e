/**
 * @module cli
 * The `gangway` command line: yargs → validated `Config` → a running daemon that drains on SIGTERM/SIGINT.
 * The only module that writes usage errors to stderr, picks exit codes (2 usage, 1 startup, 130/143 on a
 * second signal) or calls `process.exit`. Subcommands live in `COMMANDS`; each parses its own options.
 */
import { stat } from 'node:fs/promises'
import yargs, { type Argv, type ArgumentsCamelCase } from 'yargs'
import { formatAddress, parseListen } from './address.js'
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
import { createAccessFromConfig } from './auth/from-config.js'
import { ConfigError, GangwayError } from './errors.js'
import { createLogger, type Logger } from './log.js'
import { createTunnelServer, type TunnelServer } from './server.js'
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
  return runDaemon(config, {})
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

interface DaemonHooks {
  afterListen?(server: TunnelServer, logger: Logger): void
}

/** Listens, logs the startup line, then waits for SIGTERM/SIGINT and drains. */
async function runDaemon(config: Config, hooks: DaemonHooks): Promise<number> {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat })
  const access = await createAccessFromConfig(config, { logger })
  const server = createTunnelServer(config, { logger, access })
  const stop = watchStopSignals(logger)
  const hangup = access === undefined ? undefined : watchHangup(logger, () => access.reload())
  try {
    await server.listen()
    logger.info('listening', {
      version: VERSION,
      listen: formatAddress(server.address()),
      target: config.target === undefined ? undefined : formatAddress(config.target),
      routes: config.routes === undefined ? undefined : [...config.routes.keys()],
      tokenFile: config.tokenFile,
      tokenDir: config.tokenDir,
      web: config.webRoot,
    })
    hooks.afterListen?.(server, logger)
    const signal = await stop.signalled
    // close() stops accepting before it returns, so "draining" is only logged once new connections fail.
    const closed = server.close({ drainTimeoutMs: config.drainTimeoutMs })
    logger.info('draining', {
      signal,
      tunnels: server.stats().tunnels,
      timeoutSeconds: config.drainTimeoutMs / 1000,
    })
    await closed
    logger.info('stopped')
    return EXIT_OK
  } finally {
    stop.dispose()
    hangup?.()
    await access?.close()
  }
}

/** SIGHUP reloads token files; a failed reload keeps the previous tokens. Returns the disposer. */
function watchHangup(logger: Logger, reload: () => Promise<void>): () => void {
  function processOnHangup(): void {
    logger.info('SIGHUP: reloading tokens')
    reload().catch(function hangupOnReloadError(err: unknown) {
      logger.error('reload failed; keeping the previous tokens', {
        error: err instanceof Error ? err.message : String(err),
      })
    })
  }
  process.on('SIGHUP', processOnHangup)
  return () => void process.off('SIGHUP', processOnHangup)
}

/**
 * The first SIGTERM/SIGINT resolves `signalled` (the caller drains); a second one exits at once.
 * `dispose` removes the listeners, so an in-process `main()` leaves no trace on `process`.
 */
function watchStopSignals(logger: Logger): { signalled: Promise<StopSignal>; dispose(): void } {
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
