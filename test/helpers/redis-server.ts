/**
 * A Redis process (Debian's `redis-server`, installed by scripts/test-env.sh) on a loopback port, for tests
 * that take Redis away and bring it back on the same port: `stop()` kills it (SIGKILL, as a crash would),
 * `start()` starts a fresh, empty one. Cheaper than a container when only the outage matters.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Disposer } from './disposer.js'
import { freePort } from './tcp.js'

export interface RedisProcess {
  readonly port: number
  readonly url: string
  /** Starts redis-server on `port` (no-op while running); resolves once it accepts connections. */
  start(): Promise<void>
  /** Kills it with SIGKILL and waits for the exit (no-op while stopped). */
  stop(): Promise<void>
}

/** `extraArgs` go on redis-server's command line (`['--requirepass', 'pw']`). */
export async function startRedisServer(
  disposer: Disposer,
  extraArgs: readonly string[] = [],
): Promise<RedisProcess> {
  const port = await freePort()
  let child: ChildProcess | undefined

  async function start(): Promise<void> {
    if (child !== undefined) return
    const proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--dir',
        '/tmp',
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    child = proc
    const lines = createInterface({ input: proc.stdout })
    const exited = once(proc, 'exit').then(() => {
      throw new Error(`redis-server on port ${port} exited before it was ready`)
    })
    const ready = new Promise<void>((resolve) =>
      lines.on('line', (line) => {
        if (line.includes('Ready to accept connections')) resolve()
      }),
    )
    await Promise.race([ready, exited])
    void exited.catch(() => undefined)
  }

  async function stop(): Promise<void> {
    const proc = child
    if (proc === undefined) return
    child = undefined
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit')
      proc.kill('SIGKILL')
      await exited
    }
  }

  disposer.add(stop)
  await start()
  return { port, url: `redis://127.0.0.1:${port}/0`, start, stop }
}
