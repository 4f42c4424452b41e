/**
 * @module bench/run
 * `npm run bench [-- --quick] [--only=SCENARIO,…] [--relays=NAME,…] [--reps=N] [--out=DIR]`: starts the
 * target, then for every repetition, scenario and relay (relay order rotated each repetition) a fresh relay
 * and a fresh load client, each in its own process; reads the relay's CPU time and memory from /proc; and
 * writes the medians as a markdown table and JSON with ratios. Everything started is killed on exit.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release } from 'node:os'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Job } from './client.js'
import { groupUsage, type GroupUsage } from './proc.js'
import type { ChildMessage } from './protocol.js'
import {
  altGangway,
  killGroup,
  liveGroups,
  RELAYS,
  startRelay,
  stopRelay,
  type Relay,
  type RunningRelay,
} from './relays.js'
import { renderMarkdown, summarise, type Run } from './report.js'

const HERE = fileURLToPath(new URL('.', import.meta.url))
const MiB = 1024 * 1024

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=')
    return [k!, v.length > 0 ? v.join('=') : 'true'] as const
  }),
)
const QUICK = args.has('quick')
const P = QUICK
  ? {
      bytes: 32 * MiB,
      reps: 1,
      roundTrips: 1000,
      latencySlice: 100,
      latencyTurnWarmup: 20,
      connMs: 500,
      idle: 300,
      idleForking: 50,
      warmUp: 100,
      warmUpForking: 20,
      slowMs: 500,
      slow1Bytes: 16 * MiB,
      slowBytes: 8 * MiB,
      slowTunnels: 8,
      settleMs: 50,
      measureAfterMs: 300,
    }
  : {
      // 2 GiB: at 1.2-1.5 GB/s, 512 MiB took 0.4 s, and CPU time is read in 10 ms ticks.
      bytes: 2048 * MiB,
      reps: 3,
      roundTrips: 20_000,
      // 20 turns per relay: a slow stretch of the machine lasts seconds, a turn about 0.2 s.
      latencySlice: 1000,
      latencyTurnWarmup: 50,
      connMs: 4000,
      idle: 9000,
      idleForking: 300,
      warmUp: 1000,
      warmUpForking: 50,
      slowMs: 3000,
      slow1Bytes: 256 * MiB,
      slowBytes: 32 * MiB,
      slowTunnels: 32,
      settleMs: 200,
      measureAfterMs: 1000,
    }
const REPS = Number(args.get('reps') ?? P.reps)
if (args.has('mib')) P.bytes = Number(args.get('mib')) * MiB
const JOB_TIMEOUT_MS = QUICK ? 30_000 : 180_000
/** `--cpu-prof=DIR`: Node relays write a CPU profile per measurement into DIR. */
const NODE_FLAGS = [
  ...(args.has('cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${args.get('cpu-prof')}`] : []),
  ...(args.get('node-flags')?.split(' ') ?? []),
]
/** `--alt-flags='…'`: Node flags for the `--alt` build only. */
const ALT_FLAGS = [...NODE_FLAGS, ...(args.get('alt-flags')?.split(' ') ?? [])]

export const SCENARIOS = [
  'up1',
  'up16',
  'down1',
  'down16',
  'latency',
  'connrate',
  'idle',
  'slow1',
  'slowN',
] as const
export type Scenario = (typeof SCENARIOS)[number]

const only = args.get('only')?.split(',')
const scenarios = SCENARIOS.filter((s) => !only || only.includes(s))
const wanted = args.get('relays')?.split(',')
const alt = args.get('alt')
const relays = [
  ...RELAYS,
  ...(alt ? [altGangway(alt, args.get('alt-args')?.split(' '))] : []),
].filter((r) => r.available() && (!wanted || wanted.includes(r.name)))

const children = new Set<ChildProcess>()
function killEverything(): void {
  for (const pgid of liveGroups) killGroup(pgid)
  for (const child of children) child.kill('SIGKILL')
}
process.on('exit', killEverything)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killEverything()
    process.exit(130)
  })
}

/** The job of one relay's own measurement (latency is measured over every relay at once). */
function jobFor(
  scenario: Scenario,
  relay: Relay,
  port: number,
): Exclude<Job, { scenario: 'latency' }> | undefined {
  const base = { proto: relay.proto, port }
  switch (scenario) {
    case 'up1':
    case 'up16':
    case 'down1':
    case 'down16':
      return {
        ...base,
        scenario: scenario.startsWith('up') ? 'upload' : 'download',
        bytes: P.bytes,
        parallel: scenario.endsWith('16') ? 16 : 1,
        wsClient: args.has('ws-client') ? 'ws' : 'raw',
      }
    case 'latency':
      return undefined // paired over every relay at once: measureLatency
    case 'connrate':
      return { ...base, scenario, durationMs: P.connMs, parallel: 16 }
    case 'idle':
      if (!relay.command) return undefined
      return {
        ...base,
        scenario,
        count: relay.forks ? P.idleForking : P.idle,
        warmUp: relay.forks ? P.warmUpForking : P.warmUp,
      }
    case 'slow1':
    case 'slowN':
      if (!relay.command) return undefined
      return {
        ...base,
        scenario: 'slow',
        bytes: scenario === 'slow1' ? P.slow1Bytes : P.slowBytes,
        count: scenario === 'slow1' ? 1 : P.slowTunnels,
      }
  }
}

function forkChild(script: string): ChildProcess {
  const child = fork(`${HERE}${script}`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function startTarget(): Promise<ChildProcess> {
  const child = forkChild('target.js')
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', reject)
  })
  return child
}

/** A fresh target port for one measurement. */
function targetPort(target: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timeout = setTimeout(() => reject(new Error('target did not listen')), 5000)
    target.once('message', (m: ChildMessage) => {
      clearTimeout(timeout)
      if (m.type === 'listening') resolve(m.port)
      else reject(new Error('target failed'))
    })
    target.send({ cmd: 'listen' })
  })
}

/** One measurement: a fresh relay and a fresh client, both killed afterwards. */
async function measure(
  scenario: Scenario,
  relay: Relay,
  targetPort: number,
): Promise<Run | undefined> {
  const job = jobFor(scenario, relay, 0)
  if (!job) return undefined
  const flags = relay.name === 'gangway (alt)' ? ALT_FLAGS : NODE_FLAGS
  const client = forkChild('client.js') // starts while the relay does
  let running: Awaited<ReturnType<typeof startRelay>>
  try {
    running = await startRelay(relay, targetPort, flags)
  } catch (err) {
    client.kill('SIGKILL')
    console.error(`  ${scenario} via ${relay.name}: FAILED to start: ${String(err)}`)
    return { scenario, relay: relay.name, failed: 1 }
  }
  job.port = running.port
  if (args.has('verbose')) console.error(`  ${relay.name}: pid ${running.pgid ?? '–'}`)
  const pgid = running.pgid
  const usage = (withPss = true): GroupUsage | undefined =>
    pgid === undefined ? undefined : groupUsage(pgid, withPss)
  try {
    await sleep(P.settleMs) // let the relay settle after start-up
    const before = usage()
    const gcBefore = running.gc?.()
    const extra: Record<string, number> = {}
    let warm: GroupUsage | undefined
    const result = await new Promise<Record<string, number>>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error('timed out')), JOB_TIMEOUT_MS)
      client.on('message', (m: ChildMessage) => {
        if (m.type === 'result') {
          clearTimeout(timeout)
          resolve(m.result)
        } else if (m.type === 'error') {
          clearTimeout(timeout)
          reject(new Error(m.message))
        } else if (m.type === 'phase') {
          void onPhase(m.phase, m.count ?? 0).then(() => client.send({ cmd: 'continue' }), reject)
        }
      })
      client.once('exit', (code) => reject(new Error(`client exited with ${code}`)))
      client.send(job)
    })
    async function onPhase(phase: string, count: number): Promise<void> {
      if (phase === 'warm') {
        await sleep(P.measureAfterMs)
        warm = usage()
      } else if (phase === 'opened' && scenario === 'idle') {
        await sleep(P.measureAfterMs)
        const open = usage()!
        extra.tunnels = count
        extra.pssPerTunnelKiB = (open.pssBytes - warm!.pssBytes) / count / 1024
        extra.rssPerTunnelKiB = (open.rssBytes - warm!.rssBytes) / count / 1024
        extra.coldPssPerTunnelKiB = (open.pssBytes - before!.pssBytes) / count / 1024
      } else if (phase === 'opened') {
        await sleep(300)
        extra.idlePssBytes = usage()!.pssBytes
      } else if (phase === 'pushing') {
        let peak = 0
        let last = 0
        for (let t = 0; t < P.slowMs; t += 100) {
          await sleep(100)
          last = usage()!.pssBytes
          peak = Math.max(peak, last)
          if (args.has('verbose'))
            console.error(
              `    +${t + 100} ms: ${((last - extra.idlePssBytes!) / MiB).toFixed(2)} MiB`,
            )
        }
        extra.tunnels = count
        extra.heldMiB = (peak - extra.idlePssBytes!) / MiB
        extra.heldPerTunnelMiB = extra.heldMiB / count
        extra.heldEndMiB = (last - extra.idlePssBytes!) / MiB
      }
    }
    await sleep(relay.forks ? 500 : 100) // let forked children exit and be reaped (their CPU → cutime)
    const after = usage(false)
    const run: Run = { scenario, relay: relay.name, ...result, ...extra }
    if (before && after) {
      run.cpuSeconds = after.cpuSeconds - before.cpuSeconds
      run.sysSeconds = after.sysSeconds - before.sysSeconds
      run.minorFaults = after.minorFaults - before.minorFaults
      run.majorFaults = after.majorFaults - before.majorFaults
    }
    const gcAfter = running.gc?.()
    if (gcBefore && gcAfter) {
      run.scavenges = gcAfter.scavenges - gcBefore.scavenges
      run.markCompacts = gcAfter.markCompacts - gcBefore.markCompacts
    }
    if (before && after) {
      if (!relay.forks && !relay.cluster) run.peakRssMiB = after.leaderHwmBytes / MiB
    }
    return run
  } catch (err) {
    const why = `${String(err)} ${running.stderr().trim().slice(-300)}`.trim()
    console.error(`  ${scenario} via ${relay.name}: FAILED ${why}`)
    return { scenario, relay: relay.name, failed: 1 }
  } finally {
    client.kill('SIGKILL')
    await stopRelay(running, args.has('cpu-prof'))
  }
}

/**
 * The echo latency of every relay in one paired measurement: all of them started (each with its own
 * target port), one client alternating slices of round trips between them (client.ts). On a shared
 * virtual machine the echo time drifts by tens of percent from one minute to the next; measured one relay
 * after another, that drift decided the ranking. Paired, each relay sees the same minutes.
 */
async function measureLatency(order: Relay[], target: ChildProcess): Promise<Run[]> {
  const started: Array<{ relay: Relay; targetPort: number; running: RunningRelay }> = []
  const client = forkChild('client.js')
  try {
    for (const relay of order) {
      const targetPortOf = await targetPort(target)
      const flags = relay.name === 'gangway (alt)' ? ALT_FLAGS : NODE_FLAGS
      try {
        started.push({
          relay,
          targetPort: targetPortOf,
          running: await startRelay(relay, targetPortOf, flags),
        })
      } catch (err) {
        target.send({ cmd: 'close', port: targetPortOf })
        console.error(`  latency via ${relay.name}: FAILED to start: ${String(err)}`)
      }
    }
    await sleep(P.settleMs)
    const job: Job = {
      scenario: 'latency',
      endpoints: started.map(({ relay, running }) => ({
        proto: relay.proto,
        port: running.port,
        warmConnections: relay.forks ? P.warmUpForking : P.warmUp,
      })),
      roundTrips: P.roundTrips,
      warmup: 200,
      slice: P.latencySlice,
      turnWarmup: P.latencyTurnWarmup,
    }
    const results = await new Promise<Array<Record<string, number>>>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error('timed out')), JOB_TIMEOUT_MS * 4)
      client.on('message', (m: ChildMessage) => {
        if (m.type === 'results') {
          clearTimeout(timeout)
          resolve(m.results)
        } else if (m.type === 'error') {
          clearTimeout(timeout)
          reject(new Error(m.message))
        }
      })
      client.once('exit', (code) => reject(new Error(`client exited with ${code}`)))
      client.send(job)
    })
    return started.map(({ relay }, i) => ({
      scenario: 'latency',
      relay: relay.name,
      ...results[i]!,
    }))
  } catch (err) {
    console.error(`  latency (paired): FAILED ${String(err)}`)
    return started.map(({ relay }) => ({ scenario: 'latency', relay: relay.name, failed: 1 }))
  } finally {
    client.kill('SIGKILL')
    for (const { running, targetPort: port } of started) {
      await stopRelay(running, args.has('cpu-prof'))
      target.send({ cmd: 'close', port })
    }
  }
}

function machine(): Record<string, unknown> {
  let uptime = ''
  try {
    uptime = execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    // no uptime binary
  }
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    kernel: release(),
    node: process.version,
    loadavg: loadavg(),
    uptime,
    date: new Date().toISOString(),
  }
}

async function main(): Promise<void> {
  const started = Date.now()
  const machineBefore = machine()
  const target = await startTarget()
  const runs: Run[] = []
  console.error(
    `bench: ${QUICK ? 'quick' : 'full'}, ${REPS} repetition(s), relays: ${relays.map((r) => r.name).join(', ')}`,
  )
  for (let rep = 0; rep < REPS; rep++) {
    for (const scenario of scenarios) {
      const order = relays.map((_, i) => relays[(i + rep) % relays.length]!)
      if (scenario === 'latency') {
        const t0 = Date.now()
        for (const run of await measureLatency(order, target)) {
          runs.push(run)
          console.error(`  [${rep + 1}/${REPS}] latency via ${run.relay}: ${brief(run)}`)
        }
        console.error(
          `  [${rep + 1}/${REPS}] latency, paired: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
        )
        continue
      }
      for (const relay of order) {
        const t0 = Date.now()
        const port = await targetPort(target)
        const run = await measure(scenario, relay, port)
        target.send({ cmd: 'close', port })
        if (!run) continue
        runs.push(run)
        const took = `(${((Date.now() - t0) / 1000).toFixed(1)} s)`
        console.error(`  [${rep + 1}/${REPS}] ${scenario} via ${relay.name}: ${brief(run)} ${took}`)
      }
    }
  }
  target.kill('SIGKILL')
  const summary = summarise(runs, {
    quick: QUICK,
    reps: REPS,
    params: P,
    machineBefore,
    machineAfter: machine(),
    seconds: (Date.now() - started) / 1000,
  })
  const outDir = args.get('out') ?? (QUICK ? `${HERE}results` : `${HERE}../../bench/results`)
  const name = QUICK ? 'quick' : 'latest'
  mkdirSync(outDir, { recursive: true })
  writeFileSync(`${outDir}/${name}.json`, JSON.stringify(summary, null, 2) + '\n')
  const markdown = renderMarkdown(summary)
  writeFileSync(`${outDir}/${name}.md`, markdown)
  console.log(markdown)
  console.error(
    `bench: wrote ${outDir}/${name}.json and .md in ${summary.meta.seconds.toFixed(0)} s`,
  )
}

function brief(run: Run): string {
  return Object.entries(run)
    .filter(([k]) => k !== 'scenario' && k !== 'relay')
    .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(3) : v}`)
    .join(' ')
}

main().then(
  () => killEverything(),
  (err: unknown) => {
    console.error('bench failed:', err)
    killEverything()
    process.exitCode = 1
  },
)
