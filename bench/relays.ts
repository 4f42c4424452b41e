/**
 * @module bench/relays
 * The relays compared, each started fresh in its own process group for every measurement (so peak RSS and
 * CPU time belong to that scenario alone) and killed with the whole group afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import net, { type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Proto } from './client.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Relay {
  readonly name: string
  /** What the load client speaks to it. */
  readonly proto: Proto
  /** Forks a process per connection (its memory is summed over the group, by Pss). */
  readonly forks: boolean
  /** Several long-lived processes (a primary and its workers): no single process's peak RSS to report. */
  readonly cluster?: boolean
  /** Command line for `port` → `targetPort`, or undefined for no relay at all. */
  readonly command?: (port: number, targetPort: number) => [string, string[]]
  readonly available: () => boolean
}

function onPath(file: string): () => boolean {
  return () => existsSync(file)
}

/** A relay of the bench's own (`bench/*.ts`, built beside this file), run as `node FILE PORT TARGET_PORT`. */
function benchScript(name: string, file: string): Relay {
  return {
    name,
    proto: 'ws',
    forks: false,
    available: () => true,
    command: (port, target) => [process.execPath, [`${HERE}${file}`, String(port), String(target)]],
  }
}

export const RELAYS: readonly Relay[] = [
  { name: 'direct TCP', proto: 'tcp', forks: false, available: () => true },
  {
    name: 'socat',
    proto: 'tcp',
    forks: true,
    available: onPath('/usr/bin/socat'),
    command: (port, target) => [
      '/usr/bin/socat',
      [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=4096`, `TCP:127.0.0.1:${target}`],
    ],
  },
  {
    // Debian's socat copies through an 8 KiB buffer; with 64 KiB it is the strong reference (issue #15).
    name: 'socat -b 65536',
    proto: 'tcp',
    forks: true,
    available: onPath('/usr/bin/socat'),
    command: (port, target) => [
      '/usr/bin/socat',
      [
        '-b',
        '65536',
        `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=4096`,
        `TCP:127.0.0.1:${target}`,
      ],
    ],
  },
  {
    name: 'websockify',
    proto: 'ws',
    forks: true,
    available: onPath('/usr/bin/websockify'),
    command: (port, target) => [
      '/usr/bin/websockify',
      [`127.0.0.1:${port}`, `127.0.0.1:${target}`],
    ],
  },
  benchScript('naive ws+net', 'naive-relay.js'),
  benchScript('minimal streaming relay', 'minimal-relay.js'),
  {
    name: 'gangway',
    proto: 'ws',
    forks: false,
    available: () => true,
    command: (port, target) => [
      process.execPath,
      [`${ROOT}bin/gangway.js`, `127.0.0.1:${port}`, `127.0.0.1:${target}`, '--log-level', 'warn'],
    ],
  },
  {
    // `--workers 0`: one worker per core (node:cluster), the primary hands connections out round-robin.
    name: 'gangway (all cores)',
    proto: 'ws',
    forks: false,
    cluster: true,
    available: () => true,
    command: (port, target) => [
      process.execPath,
      [
        `${ROOT}bin/gangway.js`,
        `127.0.0.1:${port}`,
        `127.0.0.1:${target}`,
        '--log-level',
        'warn',
        '--workers',
        '0',
      ],
    ],
  },
]

/** Gangway from another build (`--alt=DIR`, a checkout with dist/ built), for A/B comparisons. */
export function altGangway(dir: string, extraArgs: string[] = []): Relay {
  return {
    name: 'gangway (alt)',
    proto: 'ws',
    forks: false,
    available: () => existsSync(`${dir}/bin/gangway.js`),
    command: (port, target) => [
      process.execPath,
      [
        `${dir}/bin/gangway.js`,
        `127.0.0.1:${port}`,
        `127.0.0.1:${target}`,
        '--log-level',
        'warn',
        ...extraArgs,
      ],
    ],
  }
}

export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Every relay process group started and not yet killed (killed on any exit of the orchestrator). */
export const liveGroups = new Set<number>()

export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL')
  } catch {
    // already gone
  }
  liveGroups.delete(pgid)
}

/**
 * Kills a relay's whole group; with `politely`, first SIGTERM and up to 3 s to exit (so that
 * `node --cpu-prof` can write its profile).
 */
export async function stopRelay(running: RunningRelay, politely: boolean): Promise<void> {
  const { pgid, child } = running
  if (pgid === undefined || !child) return
  if (politely && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    try {
      process.kill(pgid, 'SIGTERM')
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
  }
  killGroup(pgid)
}

export interface RunningRelay {
  readonly port: number
  readonly child?: ChildProcess
  /** Process group id (= leader pid); undefined for direct TCP. */
  readonly pgid?: number
  readonly stderr: () => string
  /** Garbage collections so far (Node relays; zero for others). */
  readonly gc?: () => { scavenges: number; markCompacts: number }
}

/** `nodeFlags` go to a Node relay's command line (e.g. `--cpu-prof`). */
export async function startRelay(
  relay: Relay,
  targetPort: number,
  nodeFlags: string[] = [],
): Promise<RunningRelay> {
  if (!relay.command) return { port: targetPort, stderr: () => '' }
  const port = await freePort()
  const [cmd, command] = relay.command(port, targetPort)
  // Node relays print a line per garbage collection (--trace-gc) on stdout, which is counted.
  const isNode = cmd === process.execPath
  const args = isNode ? ['--trace-gc', ...nodeFlags, ...command] : command
  const child: ChildProcess = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', isNode ? 'pipe' : 'ignore', 'pipe'],
  })
  const gc = { scavenges: 0, markCompacts: 0 }
  let partial = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('latin1')).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.includes(': Scavenge')) gc.scavenges++
      else if (line.includes(': Mark-Compact') || line.includes(': Mark-sweep')) gc.markCompacts++
    }
  })
  const pgid = child.pid!
  liveGroups.add(pgid)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString()
  })
  child.unref()
  await waitListening(port, child)
  return { port, pgid, child, stderr: () => stderr, gc: () => ({ ...gc }) }
}

async function waitListening(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`relay exited with ${child.exitCode}`)
    const ok = await new Promise<boolean>((resolve) => {
      const probe = net.connect({ host: '127.0.0.1', port })
      probe.once('connect', () => {
        probe.destroy()
        resolve(true)
      })
      probe.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`relay not listening on ${port} after 10 s`)
}
