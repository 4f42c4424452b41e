/**
 * @module ops/metrics
 * Prometheus metrics (prom-client) for one tunnel server, in its own registry so that several servers in
 * one process never mix their counts. The server calls the hooks where it also logs (open, close, refusal,
 * dial); nothing here runs per chunk: byte counters of live tunnels are read when Prometheus scrapes.
 * Knows nothing of sockets: it implements the gateway's `MetricsHooks`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { DialResult, MetricsHooks, RefusalReason } from '../gateway/metrics-hooks.js'
import { VERSION } from '../version.js'

export { noMetrics } from '../gateway/metrics-hooks.js'

/** The hooks the gateway calls, backed by a prom-client registry. */
export interface TunnelMetrics extends MetricsHooks {
  readonly registry: Registry
}

/** Dial times in seconds: loopback answers in microseconds, a far or failing target in seconds. */
const DIAL_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]
/** Tunnel lifetimes in seconds: from a refused probe to a day-long console session. */
const DURATION_BUCKETS = [0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600]

export interface MetricsOptions {
  /** prom-client's process metrics (default true). */
  defaultMetrics?: boolean
  /** With `--workers`: the worker index, a `worker` label on this process's own figures. */
  worker?: number | 'primary'
}

/**
 * A registry with prom-client's process metrics under their standard names (`process_*`, `nodejs_*`, as
 * every Node.js dashboard expects) and `gangway_build_info`. With a `worker`, each carries a `worker`
 * label, so that the primary lists each process's figures side by side instead of summing them.
 */
export function createProcessMetrics(options: MetricsOptions = {}): Registry {
  const registry = new Registry()
  const labels = options.worker === undefined ? {} : { worker: String(options.worker) }
  if (options.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, labels })
    // Each series is one process's (its worker label): the primary must keep it as it is, never sum or
    // drop it (prom-client would drop process_start_time_seconds).
    if (options.worker !== undefined) {
      for (const metric of registry.getMetricsAsArray()) {
        ;(metric as unknown as { aggregator: string }).aggregator = 'first'
      }
    }
  }
  return registry
}

export function createMetrics(options: MetricsOptions = {}): TunnelMetrics {
  const registry = createProcessMetrics(options)
  new Gauge({
    name: 'gangway_build_info',
    help: 'Always 1; the labels name the running Gangway version and Node.js runtime.',
    labelNames: ['version', 'nodejs'],
    registers: [registry],
    // Every worker runs the same build: one series, not one per worker.
    aggregator: 'max',
    collect() {
      this.set({ version: VERSION, nodejs: process.versions.node }, 1)
    },
  })
  let readLive: () => Iterable<{ route: string; up: number; down: number }> = () => []
  const closedBytes = new Map<string, { up: number; down: number }>()

  const active = new Gauge({
    name: 'gangway_tunnels_active',
    help: 'Tunnels open right now (target connected), including ones closing.',
    labelNames: ['route'],
    registers: [registry],
  })
  const openedTotal = new Counter({
    name: 'gangway_tunnels_opened_total',
    help: 'Tunnels opened (target connected, WebSocket accepted).',
    labelNames: ['route'],
    registers: [registry],
  })
  const tunnels = new Counter({
    name: 'gangway_tunnels_total',
    help: 'Tunnels ended, by who ended them and the close code.',
    labelNames: ['route', 'outcome', 'code'],
    registers: [registry],
  })
  new Counter({
    name: 'gangway_bytes_total',
    help: 'Payload bytes relayed: up = client to target, down = target to client (live tunnels included).',
    labelNames: ['route', 'direction'],
    registers: [registry],
    collect() {
      this.reset()
      const totals = new Map<string, { up: number; down: number }>()
      for (const [route, bytes] of closedBytes) totals.set(route, { ...bytes })
      for (const live of readLive()) {
        const sum = totals.get(live.route) ?? { up: 0, down: 0 }
        sum.up += live.up
        sum.down += live.down
        totals.set(live.route, sum)
      }
      for (const [route, bytes] of totals) {
        this.inc({ route, direction: 'up' }, bytes.up)
        this.inc({ route, direction: 'down' }, bytes.down)
      }
    },
  })
  const refusals = new Counter({
    name: 'gangway_refusals_total',
    help: 'Connections refused or failed before a tunnel opened, by close code (4502 refused, 4503 unreachable, …) and reason (origin_denied, target_denied, token_invalid, …).',
    labelNames: ['code', 'reason'],
    registers: [registry],
  })
  const dialSeconds = new Histogram({
    name: 'gangway_dial_duration_seconds',
    help: 'Time to connect the target, by result: connected, failed, or aborted (the client left first). Refusals that never dialled are not counted.',
    labelNames: ['result'],
    buckets: DIAL_BUCKETS,
    registers: [registry],
  })
  const durationSeconds = new Histogram({
    name: 'gangway_tunnel_duration_seconds',
    help: 'Lifetime of tunnels that have closed.',
    labelNames: ['route'],
    buckets: DURATION_BUCKETS,
    registers: [registry],
  })

  const reloads = new Counter({
    name: 'gangway_config_reloads_total',
    help: 'SIGHUP reloads of the configuration, by result: ok (applied) or failed (the old one stays).',
    labelNames: ['result'],
    registers: [registry],
    // Every worker reloads on the same SIGHUP: across workers this counts reloads, not worker-reloads.
    aggregator: 'max',
  })
  for (const result of ['ok', 'failed']) reloads.inc({ result }, 0) // both series exist from the start

  const logins = new Counter({
    name: 'gangway_logins_total',
    help: 'Logins the daemon ran for clients (routes with a login), by protocol and result: ok, refused (the target said no), error (it did not speak the protocol or closed), timeout.',
    labelNames: ['protocol', 'result'],
    registers: [registry],
  })

  return {
    registry,
    loggedIn(protocol, result) {
      logins.inc({ protocol, result })
    },
    configReloaded(ok) {
      reloads.inc({ result: ok ? 'ok' : 'failed' })
    },
    dialed(ms: number, result: DialResult) {
      dialSeconds.observe({ result }, ms / 1000)
    },
    opened(route) {
      active.inc({ route })
      openedTotal.inc({ route })
    },
    closed(route, result) {
      active.dec({ route })
      tunnels.inc({ route, outcome: result.initiator, code: String(result.code) })
      durationSeconds.observe({ route }, result.durationMs / 1000)
      const bytes = closedBytes.get(route) ?? { up: 0, down: 0 }
      bytes.up += result.bytesUp
      bytes.down += result.bytesDown
      closedBytes.set(route, bytes)
    },
    refused(code: number, reason: RefusalReason) {
      refusals.inc({ code: String(code), reason })
    },
    setLiveBytes(read) {
      readLive = read
    },
  }
}

/**
 * prom-client declares `nodejs_active_handles_total` and its siblings gauges, which `promtool check
 * metrics` rejects (a `_total` name is a counter's). They keep their standard names for dashboards and are
 * declared untyped instead, which Prometheus stores and queries exactly like a gauge.
 */
export function exposition(text: string): string {
  return text.replace(
    /^# TYPE (nodejs_active_(?:handles|requests|resources)_total) gauge$/gm,
    '# TYPE $1 untyped',
  )
}
