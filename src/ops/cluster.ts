/**
 * @module ops/cluster
 * `--workers N`: several worker processes share the listener (node:cluster) and each accepts from it, so
 * connection-heavy loads use every core. The primary supervises: it forks the workers, restarts one that
 * dies, forwards drain and reload requests over IPC, and owns the admin listener, whose metrics, tunnel
 * list and "close" action cover every worker. Workers run the ordinary daemon; only `cli.ts` knows which
 * role a process has. Knows nothing of the relay: it moves counts and commands between processes.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism } from 'node:os'
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { AdminStats, AdminView, MetricsSource } from './admin.js'
import type { Config, ListenAddress } from '../config/options.js'
import type { Logger } from '../log.js'
import { createProcessMetrics, type TunnelMetrics } from './metrics.js'
import type { ReloadReport } from './reload.js'
import type { RouteTotals, TunnelInfo, TunnelServer, TunnelStats } from '../gateway/server.js'
import type { SharedState } from '../state/redis-state.js'

/** How many workers `config.workers` asks for (0 = one per core). */
export function workerCount(config: Config): number {
  return config.workers === 0 ? availableParallelism() : config.workers
}

/** Messages between the primary and its workers (all carry `gangway` so other IPC users are ignored). */
type ToWorker =
  | { gangway: 'drain' }
  | { gangway: 'reload'; req: number }
  | { gangway: 'snapshot'; req: number }
  | { gangway: 'close'; req: number; id: number }
  | { gangway: 'metrics'; req: number }
type ToPrimary =
  | { gangway: 'listening'; address: ListenAddress }
  | {
      gangway: 'reply'
      req: number
      snapshot?: Snapshot
      closed?: boolean
      reload?: ReloadReport
      metrics?: MetricJson[]
    }

/** One metric as a worker sends it (`registry.getMetricsAsJSON()`). */
type MetricJson = MetricObjectWithValues<MetricValue<string>>

interface Snapshot {
  stats: TunnelStats
  list: TunnelInfo[]
  totals: Record<string, RouteTotals>
  refusals: Record<string, number>
  /** The worker's index. */
  worker: number
  /** Whether the worker's shared state (`--state-redis`) answers; undefined without it. */
  sharedState?: boolean
}

// --- worker side ------------------------------------------------------------------------------------

export interface WorkerContext {
  index: number
  count: number
  /** Resolves when the primary asks this worker to drain. */
  drainRequested: Promise<void>
  /**
   * Call once listening; also starts answering the primary's requests (`reload` on its SIGHUP). With
   * `--state-redis`, `shared` reports whether this worker's Redis answers, for the primary's `/readyz`.
   */
  ready(
    server: TunnelServer,
    metrics: TunnelMetrics | undefined,
    reload: () => Promise<ReloadReport>,
    shared?: Pick<SharedState, 'healthy'>,
  ): void
  dispose(): void
}

/** The worker's view of the cluster, or undefined in a process that is not a worker. */
export function workerContext(): WorkerContext | undefined {
  if (!cluster.isWorker) return undefined
  const index = Number(process.env['GANGWAY_WORKER_INDEX'] ?? 0)
  const count = Number(process.env['GANGWAY_WORKERS'] ?? 1)
  let requestDrain: () => void = () => {}
  const drainRequested = new Promise<void>((resolve) => (requestDrain = resolve))
  let server: TunnelServer | undefined
  let reload: (() => Promise<ReloadReport>) | undefined
  let shared: Pick<SharedState, 'healthy'> | undefined
  let registry: TunnelMetrics['registry'] | undefined

  function processOnMessage(message: unknown): void {
    const m = message as Partial<{ gangway: string; req: number; id: number }>
    if (m.gangway === 'drain') requestDrain()
    else if (typeof m.req !== 'number') return
    else if (m.gangway === 'reload') {
      const req = m.req
      // The primary logs the outcome once for all workers. A worker still starting has nothing to
      // report (it read the file as it is now): it answers at once so that the primary does not wait.
      if (reload === undefined) send({ gangway: 'reply', req })
      else {
        reload()
          .then((report) => send({ gangway: 'reply', req, reload: report }))
          .catch(function workerOnReloadError(err: unknown) {
            // The primary waits for every worker's reply, and logs the outcome once for all of them.
            const error = err instanceof Error ? err.message : String(err)
            const report: ReloadReport = { ok: false, error, changed: [], restartNeeded: [] }
            send({ gangway: 'reply', req, reload: report })
          })
      }
    } else if (m.gangway === 'metrics') {
      // Answered also while starting (nothing to report yet), so that a scrape never waits for it.
      const req = m.req
      ;(registry?.getMetricsAsJSON() ?? Promise.resolve([]))
        .then((metrics) => send({ gangway: 'reply', req, metrics }))
        .catch(function workerOnMetricsError() {
          // An empty reply: this worker is left out of the scrape instead of the primary waiting for it.
          send({ gangway: 'reply', req })
        })
    } else if (server === undefined) return
    else if (m.gangway === 'snapshot') {
      send({
        gangway: 'reply',
        req: m.req,
        snapshot: {
          stats: server.stats(),
          list: server.list(),
          totals: server.totals(),
          refusals: server.refusals(),
          worker: index,
          sharedState: shared?.healthy(),
        },
      })
    } else if (m.gangway === 'close' && typeof m.id === 'number') {
      send({ gangway: 'reply', req: m.req, closed: server.closeTunnel(m.id) })
    }
  }
  process.on('message', processOnMessage)
  return {
    index,
    count,
    drainRequested,
    ready(s, metrics, onReload, state) {
      server = s
      reload = onReload
      shared = state
      registry = metrics?.registry
      send({ gangway: 'listening', address: s.address() })
    },
    dispose() {
      process.off('message', processOnMessage)
      // The IPC channel would keep this worker alive after its daemon stopped.
      if (process.connected) process.disconnect()
    },
  }
}

function send(message: ToPrimary): void {
  process.send?.(message)
}

// --- primary side -----------------------------------------------------------------------------------

/** Restart backoff after a worker dies: doubles from 1 s up to 30 s, reset once it has lived a minute. */
const RESTART_MIN_MS = 1_000
const RESTART_MAX_MS = 30_000
const STABLE_MS = 60_000
/** How long the admin listener waits for each worker's answer. */
const ADMIN_REPLY_MS = 2_000
/** How long a reload may take in a worker (it may read files, fetch a JWKS) before the primary stops waiting. */
const RELOAD_REPLY_MS = 30_000

export interface PrimaryHandle {
  /** Resolves with the first bound address once every worker listens; rejects if one fails to start. */
  listening: Promise<ListenAddress>
  /** Admin sources covering every worker. */
  admin: AdminView & MetricsSource
  /** Asks every worker to drain; resolves when all have exited. */
  drain(): Promise<void>
  /** Asks every worker to reload its config; resolves with the reports that came in time. */
  reload(): Promise<ReloadReport[]>
  /** Ends every worker at once (a second signal). */
  kill(): void
}

export function startPrimary(count: number, logger: Logger): PrimaryHandle {
  let draining = false
  let lastReq = 0
  const replies = new Map<number, (m: ToPrimary & { gangway: 'reply' }) => void>()
  const indexOf = new Map<Worker, number>()
  const backoff = new Map<number, number>()
  let resolveListening: (address: ListenAddress) => void = () => {}
  let rejectListening: (err: Error) => void = () => {}
  const listening = new Promise<ListenAddress>((resolve, reject) => {
    resolveListening = resolve
    rejectListening = reject
  })
  const listeningWorkers = new Set<number>()
  let started = false
  // The primary's own process figures (worker="primary") join the workers' on /metrics.
  const ownMetrics = createProcessMetrics({ worker: 'primary' })

  // The workers accept from the shared listening socket themselves; the kernel gives each connection to one
  // that is waiting in accept, so a busy worker takes fewer. Node's default on Linux is round robin, where
  // the primary accepts every connection and passes it to a worker over IPC: in `npm run bench` that cost
  // more than a worker spends on the whole connection (docs/operations.md). NODE_CLUSTER_SCHED_POLICY=rr
  // keeps Node's default.
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined)
    cluster.schedulingPolicy = cluster.SCHED_NONE
  for (let i = 0; i < count; i++) fork(i)

  function fork(index: number): void {
    const worker = cluster.fork({
      GANGWAY_WORKER_INDEX: String(index),
      GANGWAY_WORKERS: String(count),
    })
    const bornAt = Date.now()
    indexOf.set(worker, index)
    worker.on('message', function workerOnMessage(message: unknown) {
      const m = message as Partial<ToPrimary>
      if (m.gangway === 'listening') {
        // `worker` on the primary's lines is "primary" (who writes); the worker meant is its `index`.
        if (started) logger.info('worker restarted', { index, pid: worker.process.pid })
        listeningWorkers.add(index)
        if (!started && listeningWorkers.size === count) {
          started = true
          resolveListening(m.address as ListenAddress)
        }
      } else if (m.gangway === 'reply' && m.req !== undefined) {
        replies.get(m.req)?.(m as ToPrimary & { gangway: 'reply' })
      }
    })
    worker.on('exit', function workerOnExit(code, signal) {
      indexOf.delete(worker)
      listeningWorkers.delete(index)
      if (draining) return
      if (!started) {
        // A worker that cannot start (address in use, bad certificate) stops the whole daemon.
        rejectListening(new Error(`worker ${index} exited during startup (code ${code ?? signal})`))
        draining = true
        for (const w of indexOf.keys()) w.kill('SIGKILL')
        return
      }
      const lived = Date.now() - bornAt
      const delay =
        lived > STABLE_MS
          ? RESTART_MIN_MS
          : Math.min(RESTART_MAX_MS, (backoff.get(index) ?? RESTART_MIN_MS / 2) * 2)
      backoff.set(index, delay)
      logger.error('worker exited; restarting it', {
        index,
        pid: worker.process.pid,
        code,
        signal,
        restartInMs: delay,
      })
      setTimeout(() => {
        if (!draining) fork(index)
      }, delay).unref()
    })
  }

  function broadcast(message: ToWorker): number {
    let sent = 0
    for (const worker of indexOf.keys()) {
      if (worker.isConnected()) {
        worker.send(message)
        sent++
      }
    }
    return sent
  }

  /** Asks every worker; resolves with the replies that came within ADMIN_REPLY_MS. */
  function ask(
    make: (req: number) => ToWorker,
    timeoutMs = ADMIN_REPLY_MS,
  ): Promise<Array<ToPrimary & { gangway: 'reply' }>> {
    const req = ++lastReq
    const got: Array<ToPrimary & { gangway: 'reply' }> = []
    return new Promise((resolve) => {
      const expected = broadcast(make(req))
      const finish = (): void => {
        clearTimeout(timer)
        replies.delete(req)
        resolve(got)
      }
      const timer = setTimeout(finish, timeoutMs)
      replies.set(req, (reply) => {
        got.push(reply)
        if (got.length >= expected) finish()
      })
      if (expected === 0) finish()
    })
  }

  async function snapshots(): Promise<Snapshot[]> {
    const all = await ask((req) => ({ gangway: 'snapshot', req }))
    return all.flatMap((r) => (r.snapshot === undefined ? [] : [r.snapshot]))
  }

  /**
   * Every worker's metrics and the primary's own, merged: gangway_* series summed across workers (as
   * each metric's aggregator says), process figures side by side under their `worker` label. A worker
   * that does not answer in time is left out of this scrape rather than failing it.
   */
  async function clusterMetrics(): Promise<string> {
    const replies = await ask((req) => ({ gangway: 'metrics', req }))
    const all = replies.flatMap((r) => (r.metrics === undefined ? [] : [r.metrics]))
    all.push(await ownMetrics.getMetricsAsJSON())
    return AggregatorRegistry.aggregate(all).metrics()
  }

  const admin: AdminView & MetricsSource = {
    registry: { contentType: ownMetrics.contentType, metrics: clusterMetrics },
    async stats(): Promise<AdminStats> {
      const all = await snapshots()
      return {
        tunnels: sum(all.map((s) => s.stats.tunnels)),
        dialing: sum(all.map((s) => s.stats.dialing)),
        heldBytes: sum(all.map((s) => s.stats.heldBytes)),
        draining: draining || all.some((s) => s.stats.draining),
        // Each worker has its own Redis connection: one that lost it refuses tunnels with tokens (4503).
        sharedStateDown: all
          .filter((s) => s.sharedState === false)
          .map((s) => s.worker)
          .sort((a, b) => a - b),
      }
    },
    async list() {
      // Workers answer in any order: sorted by id, the list is the same from one request to the next.
      return (await snapshots()).flatMap((s) => s.list).sort((a, b) => a.id - b.id)
    },
    async refusals() {
      const out: Record<string, number> = {}
      for (const snapshot of await snapshots()) {
        for (const [reason, n] of Object.entries(snapshot.refusals))
          out[reason] = (out[reason] ?? 0) + n
      }
      return out
    },
    async totals() {
      const out: Record<string, RouteTotals> = {}
      for (const snapshot of await snapshots()) {
        for (const [route, t] of Object.entries(snapshot.totals)) {
          const acc = (out[route] ??= { active: 0, closed: 0, bytesUp: 0, bytesDown: 0 })
          acc.active += t.active
          acc.closed += t.closed
          acc.bytesUp += t.bytesUp
          acc.bytesDown += t.bytesDown
        }
      }
      return out
    },
    async closeTunnel(id) {
      // Ids are unique across workers (each uses its own residue of id mod count): one will say yes.
      return (await ask((req) => ({ gangway: 'close', req, id }))).some((r) => r.closed === true)
    },
  }

  return {
    listening,
    admin,
    async drain() {
      draining = true
      const exits = [...indexOf.keys()].map(
        (worker) =>
          new Promise<void>((resolve) =>
            worker.isDead() ? resolve() : worker.once('exit', () => resolve()),
          ),
      )
      broadcast({ gangway: 'drain' })
      await Promise.all(exits)
    },
    async reload() {
      const replies = await ask((req) => ({ gangway: 'reload', req }), RELOAD_REPLY_MS)
      return replies.flatMap((r) => (r.reload === undefined ? [] : [r.reload]))
    },
    kill() {
      draining = true
      for (const worker of indexOf.keys()) worker.kill('SIGKILL')
    },
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}
