/**
 * @module gateway/metrics-hooks
 * What the gateway reports as tunnels open, close, get refused and dial: a small interface it calls where
 * it also logs. ops/metrics.ts backs it with Prometheus; without an admin listener nothing is counted.
 * Nothing here runs per chunk.
 * Knows nothing of Prometheus.
 */
import type { TunnelErrorCode } from '../errors.js'
import type { TunnelResult } from '../relay/tunnel-result.js'

/** How a dial of the target ended; a refusal before any dial is not a dial. */
export type DialResult = 'connected' | 'failed' | 'aborted'

/**
 * Why a connection was refused, as a metric label: the tunnel error code in lower case without `ERR_`
 * (`origin_denied`, `target_denied`, `token_invalid`, `target_refused`, …), a fixed set.
 */
export type RefusalReason = Lowercase<TunnelErrorCode extends `ERR_${infer R}` ? R : never>

export function refusalReason(code: TunnelErrorCode): RefusalReason {
  return code.slice(4).toLowerCase() as RefusalReason
}

/** What the gateway reports; ops/metrics.ts implements it. */
export interface MetricsHooks {
  /** A dial of the target finished: `ms` it took, and how it ended. */
  dialed(ms: number, result: DialResult): void
  opened(route: string): void
  closed(route: string, result: TunnelResult): void
  /** A refusal before or instead of a tunnel, by its close code and reason. */
  refused(code: number, reason: RefusalReason): void
  /** Registers a reader of live per-route byte counts (tunnels not yet closed), read at scrape time. */
  setLiveBytes(read: () => Iterable<{ route: string; up: number; down: number }>): void
  /** The daemon logged in to a target for a client: `result` is ok, refused, error or timeout. */
  loggedIn(protocol: string, result: string): void
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
  loggedIn() {},
}
