/**
 * @module ops/metrics
 * Prometheus metrics (prom-client) for one tunnel server, in its own registry so that several servers in
 * one process never mix their counts. The server calls the hooks where it also logs (open, close, refusal,
 * dial); nothing here runs per chunk: byte counters of live tunnels are read when Prometheus scrapes.
 * Knows nothing of sockets: it implements the gateway's `MetricsHooks`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { MetricsHooks } from '../gateway/metrics-hooks.js'

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

export function createMetrics(options: { defaultMetrics?: boolean } = {}): TunnelMetrics {
  const registry = new Registry()
  if (options.defaultMetrics !== false) {
    // Process CPU, memory, fds, GC and event-loop lag, under our prefix.
    collectDefaultMetrics({ register: registry, prefix: 'gangway_' })
  }
  let readLive: () => Iterable<{ route: string; up: number; down: number }> = () => []
  const closedBytes = new Map<string, { up: number; down: number }>()

  const active = new Gauge({
    name: 'gangway_tunnels_active',
    help: 'Tunnels open right now (target connected), including ones closing.',
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
    help: 'Connections refused or failed before a tunnel opened, by close code (4502 refused, 4503 unreachable, …).',
    labelNames: ['code'],
    registers: [registry],
  })
  const dialSeconds = new Histogram({
    name: 'gangway_dial_duration_seconds',
    help: 'Time to connect the target, by result.',
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

  return {
    registry,
    configReloaded(ok) {
      reloads.inc({ result: ok ? 'ok' : 'failed' })
    },
    dialed(ms, ok) {
      dialSeconds.observe({ result: ok ? 'connected' : 'failed' }, ms / 1000)
    },
    opened(route) {
      active.inc({ route })
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
    refused(code) {
      refusals.inc({ code: String(code) })
    },
    setLiveBytes(read) {
      readLive = read
    },
  }
}
