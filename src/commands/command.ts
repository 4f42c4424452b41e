/**
 * @module commands/command
 * What the subcommands share: the shape of a `COMMANDS` entry, the exit code of success, and readers of
 * option values. A bad value is a `ConfigError`, which cli.ts reports with exit code 2.
 * Knows no subcommand.
 */
import { readFile } from 'node:fs/promises'
import type { Argv, ArgumentsCamelCase } from 'yargs'
import { ConfigError } from '../errors.js'

/** Exit code after a clean drain or a finished subcommand (cli.ts holds the failure codes). */
export const EXIT_OK = 0

export type Args = ArgumentsCamelCase<Record<string, unknown>>

/** One subcommand: yargs declaration plus what runs once the whole command line has parsed. */
export interface CommandSpec {
  command: string
  describe: string
  builder: (y: Argv) => Argv
  run: (args: Args) => Promise<number>
}

/** A subcommand's string option: undefined when absent, a usage error when given empty. */
export function stringOption(args: Args, name: string): string | undefined {
  const value = args[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '')
    throw new ConfigError(`--${name}: expected a value`)
  return value
}

export function parseSeconds(value: string, label: string): number {
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) {
    throw new ConfigError(
      `${label}: expected a positive number of seconds, got ${JSON.stringify(value)}`,
    )
  }
  return n
}

/** The token in a `--token-file`: its first line, trimmed; a usage error when unreadable or empty. */
export async function readTokenFile(tokenFile: string): Promise<string> {
  const raw = await readFile(tokenFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`--token-file: cannot read ${tokenFile} (${err.code ?? err.message})`)
  })
  const token = raw.split('\n', 1)[0]?.trim() || undefined
  if (token === undefined) throw new ConfigError(`--token-file: ${tokenFile} is empty`)
  return token
}
