/**
 * @module gateway/metrics-hooks
 * What the gateway reports as tunnels open, close, get refused and dial: a small interface it calls where
 * it also logs. ops/metrics.ts backs it with Prometheus; without an admin listener nothing is counted.
 * Nothing here runs per chunk.
 * Knows nothing of Prometheus.
 */
import type { TunnelResult } from '../relay/tunnel-result.js'

/** What the gateway reports; ops/metrics.ts implements it. */
export interface MetricsHooks {
  /** A dial finished: `ms` it took, and whether it connected. */
  dialed(ms: number, ok: boolean): void
  opened(route: string): void
  closed(route: string, result: TunnelResult): void
  /** A refusal before or instead of a tunnel, by its close code. */
  refused(code: number): void
  /** Registers a reader of live per-route byte counts (tunnels not yet closed), read at scrape time. */
  setLiveBytes(read: () => Iterable<{ route: string; up: number; down: number }>): void
  /** A SIGHUP reload of the configuration ended: applied, or rejected (the old one stays). */
  configReloaded(ok: boolean): void
}

/** Metrics hooks that do nothing: the server's default when no admin listener is configured. */
export const noMetrics: MetricsHooks = {
  dialed() {},
  opened() {},
  closed() {},
  refused() {},
  setLiveBytes() {},
  configReloaded() {},
}
