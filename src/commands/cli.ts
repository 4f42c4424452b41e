/**
 * @module commands/cli
 * The `gangway` command line: yargs → the subcommand that runs (one module each under commands/). The only
 * module that writes usage errors to stderr or picks the failure exit codes (2 usage, 1 startup); a second
 * signal's 130/143 and its `process.exit` are in commands/signals.ts. Subcommands live in `COMMANDS`; each
 * parses its own options.
 * Knows no option's meaning: config/options.ts and each command own theirs.
 */
import yargs, { type Argv } from 'yargs'
import { OPTIONS, parseBoolean } from '../config/options.js'
import { ConfigError, GangwayError } from '../errors.js'
import { VERSION } from '../version.js'
import { EXIT_OK, type Args, type CommandSpec } from './command.js'
import { checkCommand } from './check.js'
import { clientCommand } from './client.js'
import { serveCommand } from './daemon.js'
import { demoCommand } from './demo.js'
import { replayCommand } from './replay.js'
import { revokeCommand } from './revoke.js'
import { tokenCommand } from './token.js'

/** Exit codes: 0 after a clean drain (`EXIT_OK`), 1 when startup fails, 2 for a usage or configuration error. */
const EXIT_STARTUP = 1
const EXIT_USAGE = 2

const COMMANDS: readonly CommandSpec[] = [
  serveCommand,
  demoCommand,
  checkCommand,
  clientCommand,
  tokenCommand,
  revokeCommand,
  replayCommand,
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
  // Its promise settles at once for the same reason; a failure reaches the caller through `output`/`run`.
  const parsed = y.parse(
    argv,
    {},
    function yargsOnOutput(_err: unknown, _args: unknown, text: string) {
      output = text
    },
  ) as unknown
  if (parsed instanceof Promise) parsed.catch(() => undefined)
  return { output, run }
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
