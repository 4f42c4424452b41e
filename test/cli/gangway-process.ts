/**
 * Runs the built CLI (`node bin/gangway.js`, which imports dist/) as a child process and exposes its output
 * as lines and parsed JSON log records, so tests can wait on events instead of sleeping.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import type { Disposer } from '../helpers/disposer.js'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BIN = fileURLToPath(new URL('../../bin/gangway.js', import.meta.url))

export type LogRecord = Record<string, unknown> & { msg: string; level: string }

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface GangwayProcess {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  /** Resolves once stdout and stderr are closed and the process has exited. */
  exited: Promise<Exit>
  /** The first JSON log line that matches, already printed or still to come; rejects if the process ends first. */
  waitForLog(match: (record: LogRecord) => boolean): Promise<LogRecord>
}

export interface SpawnOptions {
  cwd?: string
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv
}

/** Spawns `node bin/gangway.js ...args`; the disposer kills it (SIGKILL) if it is still running. */
export function spawnGangway(
  disposer: Disposer,
  args: string[],
  options: SpawnOptions = {},
): GangwayProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const waiters = new Set<() => void>()
  let ended = false
  createInterface({ input: child.stdout }).on('line', function stdoutOnLine(line) {
    stdout.push(line)
    for (const waiter of waiters) waiter()
  })
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line))
  const exited = once(child, 'close').then(function childOnClose(args): Exit {
    ended = true
    for (const waiter of waiters) waiter()
    const [code, signal] = args as [number | null, NodeJS.Signals | null]
    return { code, signal }
  })
  disposer.add(async function killGangway() {
    if (!ended) {
      child.kill('SIGKILL')
      await exited
    }
  })

  function findLog(match: (record: LogRecord) => boolean): LogRecord | undefined {
    for (const line of stdout) {
      const record = parseRecord(line)
      if (record && match(record)) return record
    }
    return undefined
  }

  function waitForLog(match: (record: LogRecord) => boolean): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      function check(): void {
        const found = findLog(match)
        if (found) {
          waiters.delete(check)
          resolve(found)
        } else if (ended) {
          waiters.delete(check)
          reject(
            new Error(
              `gangway ended first; stdout: ${stdout.join('\n')}\nstderr: ${stderr.join('\n')}`,
            ),
          )
        }
      }
      waiters.add(check)
      check()
    })
  }

  return { child, stdout, stderr, exited, waitForLog }
}

/** Runs gangway to completion (for usage errors, --help, --version). */
export async function runGangway(
  disposer: Disposer,
  args: string[],
  options: SpawnOptions = {},
): Promise<Exit & { stdout: string[]; stderr: string[] }> {
  const proc = spawnGangway(disposer, args, options)
  const exit = await proc.exited
  return { ...exit, stdout: proc.stdout, stderr: proc.stderr }
}

function parseRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    return JSON.parse(line) as LogRecord
  } catch {
    return undefined
  }
}

/** Port of a `listen` field such as `127.0.0.1:41234`. */
export function portOf(listen: unknown): number {
  const match = /:(\d+)$/.exec(String(listen))
  if (!match) throw new Error(`no port in ${String(listen)}`)
  return Number(match[1])
}

/** The child processes of `pid` (the workers of a `--workers` daemon). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
  } catch {
    return [] // pgrep exits 1 when there are none
  }
}

/** Runs `gangway client --stdio …` with `input` on stdin; resolves with stdout, stderr lines and the exit code. */
export async function runStdioClient(
  disposer: Disposer,
  args: string[],
  input: Buffer | string,
): Promise<{ code: number; stdout: Buffer; stderr: string[] }> {
  const child = spawn(process.execPath, [BIN, 'client', '--stdio', ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  disposer.add(() => child.kill('SIGKILL'))
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (c: Buffer) => out.push(c))
  child.stderr.on('data', (c: Buffer) => err.push(c))
  child.stdin.on('error', () => {})
  child.stdin.end(input)
  const [code] = (await once(child, 'close')) as [number]
  return {
    code,
    stdout: Buffer.concat(out),
    stderr: Buffer.concat(err).toString().trim().split('\n').filter(Boolean),
  }
}
