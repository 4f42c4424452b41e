/**
 * Runs an ES module program in a child Node process and collects what it printed: for tests where a crash
 * (an unhandled rejection, an uncaught exception) must show as a failed process, not as vitest noise.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import type { Disposer } from './disposer.js'

export interface ProgramResult {
  code: number | null
  stdout: string
  stderr: string
}

/** `source` runs as `node --input-type=module -e`, in `cwd`, with `args` as `process.argv[1…]`. */
export async function runModule(
  disposer: Disposer,
  source: string,
  args: string[],
  cwd: string,
): Promise<ProgramResult> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  disposer.add(() => void child.kill())
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  return { code, stdout, stderr }
}
