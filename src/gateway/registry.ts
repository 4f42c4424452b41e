/**
 * @module gateway/registry
 * The live tunnels of one server: starts each over its bridge (with the open and close log lines, metrics,
 * recording and diagnostics events), counts upgrades still dialing, keeps per-route totals, and serves the
 * admin views (list, totals, close by id or by token). Knows no listener and no handshake.
 */
import type net from 'node:net'
import type { Duplex } from 'node:stream'
import type { Admission } from '../auth/access.js'
import type { Config } from '../config/options.js'
import { bridge, type Tunnel, type TunnelResult } from '../relay/bridge.js'
import type { RelaySocket } from '../relay/handover.js'
import { describeTarget } from '../targets/dial.js'
import { logRejection, type Logger } from '../log.js'
import { CloseCode } from '../protocol.js'
import { closeChannel, openChannel } from '../events.js'
import type { DialResult, MetricsHooks } from './metrics-hooks.js'
import { startRecording, type Recorder } from '../relay/record.js'
import type { UpgradeContext } from './upgrade.js'
import type { LoginSession } from './login.js'
import { startOpening } from '../targets/login/opening.js'
import { watchSessionEnd } from './session-end.js'

/** One live tunnel, as the admin API and status page show it. */
export interface TunnelInfo {
  id: number
  client: string
  target: string
  route: string
  /** Fingerprint of the token that admitted it (first 8 hex of its SHA-256), if a token did. */
  token: string | undefined
  /** When the tunnel opened (ms since the epoch). */
  openedAt: number
  bytesUp: number
  bytesDown: number
}

/** Per-route counts: tunnels open now and ended so far, bytes both ways (live tunnels included). */
export interface RouteTotals {
  active: number
  closed: number
  bytesUp: number
  bytesDown: number
}

export interface TunnelRegistryOptions {
  logger: Logger
  metrics: MetricsHooks
  /** The config in force (reconfigure() swaps it): each new tunnel reads its settings from it. */
  config: () => Config
  /**
   * True for a token fingerprint whose revocation was heard after `since` (when the gate asked Redis): a
   * tunnel admitted before the revocation closes as it opens.
   */
  isRevoked?: (fingerprint: string, since: number) => boolean
}

/** A live tunnel and what the admin views show of it besides its byte counts. */
interface LiveTunnel {
  tunnel: Tunnel
  info: Omit<TunnelInfo, 'bytesUp' | 'bytesDown'>
}

/** The tunnel server's registry of live tunnels and upgrades still dialing. */
export interface TunnelRegistry {
  /** Bridges an upgraded WebSocket to its connected target and tracks the tunnel until it closes. */
  startTunnel: UpgradeContext['startTunnel']
  dialStarted: () => void
  dialFinished: (ms: number, result: DialResult | undefined) => void
  /** Tunnels open plus upgrades dialing. */
  load: () => number
  /** Tunnels open (including ones closing). */
  size: () => number
  /** Resolves once no tunnel is open and no upgrade is dialing. */
  whenIdle: () => Promise<void>
  /** One heartbeat round over every tunnel. */
  sweepHeartbeats: () => void
  /** Closes every live tunnel with `code` (the end of a drain). */
  closeAll: (code: number, reason: string) => void
  /** Tells every live tunnel's client that the daemon drains and closes it within `ms`. */
  announceDrain: (ms: number) => void
  /** Per-route bytes of the live tunnels, for the metrics. */
  liveBytes: () => Iterable<{ route: string; up: number; down: number }>
  stats: () => { tunnels: number; dialing: number; heldBytes: number }
  list: () => TunnelInfo[]
  totals: () => Record<string, RouteTotals>
  closeTunnel: (id: number) => boolean
  closeTokenTunnels: (fingerprint: string) => number
}

export function createTunnelRegistry(options: TunnelRegistryOptions): TunnelRegistry {
  const { logger, metrics } = options
  const tunnels = new Map<number, LiveTunnel>()
  const closedTotals = new Map<string, RouteTotals>()
  let dialing = 0
  let idleWaiters: Array<() => void> = []

  function dialStarted(): void {
    dialing++
  }

  function dialFinished(ms: number, result: DialResult | undefined): void {
    dialing--
    if (result !== undefined) metrics.dialed(ms, result)
    notifyIfIdle()
  }

  function load(): number {
    return tunnels.size + dialing
  }

  function size(): number {
    return tunnels.size
  }

  function recordingFor(id: number, client: string, targetText: string): Recorder | undefined {
    const live = options.config()
    if (live.record === undefined) return undefined
    return startRecording(live.record, { conn: id, client, target: targetText }, (err) =>
      logger.error('recording failed; the tunnel goes on unrecorded', {
        conn: id,
        error: err.message,
      }),
    )
  }

  function* liveBytes(): Iterable<{ route: string; up: number; down: number }> {
    for (const { tunnel, info } of tunnels.values()) yield { route: info.route, ...tunnel.bytes() }
  }

  function startTunnel(
    id: number,
    ws: RelaySocket,
    wsSocket: Duplex,
    tcp: net.Socket,
    client: string,
    admission: Admission,
    login?: LoginSession,
  ): void {
    const live = options.config()
    const route = admission.options
    const routeName = admission.label ?? ROUTE
    const targetText = describeTarget(admission.target)
    const recorder = recordingFor(id, client, targetText)
    const tunnel = bridge(ws, wsSocket, tcp, {
      id,
      highWaterMarkBytes: route.highWaterMarkBytes ?? live.highWaterMarkBytes,
      textPolicy: route.textPolicy ?? live.textPolicy,
      idleTimeoutMs: route.idleTimeoutMs ?? live.idleTimeoutMs,
      recorder,
      maxBytes: route.maxBytes,
    })
    tunnels.set(id, {
      tunnel,
      info: {
        id,
        client,
        target: targetText,
        route: routeName,
        token: admission.fingerprint,
        openedAt: Date.now(),
      },
    })
    if (login !== undefined) {
      // The bridge listens now: the client's side of the login runs through it (targets/login/opening.ts).
      startOpening(tcp, login.opening, login.leftover, {
        close: (code, reason) => tunnel.close(code, reason),
        timeoutMs: login.timeoutMs,
      })
    }
    watchSessionEnd({
      ws,
      tunnel,
      expiresAt: admission.expiresAt,
      maxDurationMs: route.maxDurationMs,
      config: live,
    })
    metrics.opened(routeName)
    logger.info('tunnel open', {
      conn: id,
      client,
      target: targetText,
      route: admission.label,
      token: admission.fingerprint,
      subprotocol: ws.protocol || undefined,
    })
    if (openChannel.hasSubscribers) openChannel.publish({ id, client, target: targetText })
    // Admitted before a revocation reached this node, connected after it: close it now.
    if (
      admission.fingerprint !== undefined &&
      admission.revocationCheckedAt !== undefined &&
      options.isRevoked?.(admission.fingerprint, admission.revocationCheckedAt)
    ) {
      tunnel.close(CloseCode.CLOSED_BY_OPERATOR, TOKEN_REVOKED)
    }
    tunnel.closed
      .then(tunnelOnClosed)
      .catch(logRejection(logger, 'tunnel end bookkeeping failed', { conn: id }))
    function tunnelOnClosed(result: TunnelResult): void {
      tunnels.delete(id)
      recorder?.end(result)
      admission.release()
      metrics.closed(routeName, result)
      const sum = closedTotals.get(routeName) ?? { active: 0, closed: 0, bytesUp: 0, bytesDown: 0 }
      sum.closed++
      sum.bytesUp += result.bytesUp
      sum.bytesDown += result.bytesDown
      closedTotals.set(routeName, sum)
      logger.info('tunnel closed', {
        conn: id,
        client,
        target: targetText,
        route: admission.label,
        token: admission.fingerprint,
        up: result.bytesUp,
        down: result.bytesDown,
        ms: result.durationMs,
        code: result.code,
        reason: result.reason || undefined,
        by: result.initiator,
        error: result.error,
      })
      if (closeChannel.hasSubscribers) closeChannel.publish(result)
      notifyIfIdle()
    }
  }

  function notifyIfIdle(): void {
    if (tunnels.size > 0 || dialing > 0) return
    const waiters = idleWaiters
    idleWaiters = []
    for (const wake of waiters) wake()
  }

  function whenIdle(): Promise<void> {
    if (tunnels.size === 0 && dialing === 0) return Promise.resolve()
    return new Promise((resolve) => idleWaiters.push(resolve))
  }

  function sweepHeartbeats(): void {
    for (const { tunnel } of tunnels.values()) tunnel.heartbeat()
  }

  function announceDrain(ms: number): void {
    for (const { tunnel } of tunnels.values()) tunnel.announceDrain(ms)
  }

  function closeAll(code: number, reason: string): void {
    for (const { tunnel } of tunnels.values()) tunnel.close(code, reason)
  }

  function stats(): { tunnels: number; dialing: number; heldBytes: number } {
    let heldBytes = 0
    for (const { tunnel } of tunnels.values()) heldBytes += tunnel.heldBytes()
    return { tunnels: tunnels.size, dialing, heldBytes }
  }

  function list(): TunnelInfo[] {
    const out: TunnelInfo[] = []
    for (const { tunnel, info } of tunnels.values()) {
      const bytes = tunnel.bytes()
      out.push({ ...info, bytesUp: bytes.up, bytesDown: bytes.down })
    }
    return out
  }

  function totals(): Record<string, RouteTotals> {
    const out: Record<string, RouteTotals> = {}
    for (const [route, sum] of closedTotals) out[route] = { ...sum }
    for (const info of list()) {
      const sum = (out[info.route] ??= { active: 0, closed: 0, bytesUp: 0, bytesDown: 0 })
      sum.active++
      sum.bytesUp += info.bytesUp
      sum.bytesDown += info.bytesDown
    }
    return out
  }

  function closeTunnel(id: number): boolean {
    const tunnel = tunnels.get(id)?.tunnel
    if (tunnel === undefined) return false
    logger.info('closing tunnel on operator request', { conn: id })
    tunnel.close(CloseCode.CLOSED_BY_OPERATOR, 'closed by an operator')
    return true
  }

  function closeTokenTunnels(fingerprint: string): number {
    let count = 0
    for (const { tunnel, info } of tunnels.values()) {
      if (info.token !== fingerprint) continue
      tunnel.close(CloseCode.CLOSED_BY_OPERATOR, TOKEN_REVOKED)
      count++
    }
    return count
  }

  return {
    startTunnel,
    dialStarted,
    dialFinished,
    load,
    size,
    whenIdle,
    sweepHeartbeats,
    closeAll,
    announceDrain,
    liveBytes,
    stats,
    list,
    totals,
    closeTunnel,
    closeTokenTunnels,
  }
}

/** Close reason of the tunnels of a revoked token (code 4410). */
export const TOKEN_REVOKED = 'token revoked'

/** The route label of tunnels that no named route or resolver admitted (the fixed TARGET). */
const ROUTE = 'default'
