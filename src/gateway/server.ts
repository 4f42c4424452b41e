/**
 * @module gateway/server
 * The tunnel server: wires the listener (gateway/listener.ts), the upgrade handshake (gateway/upgrade.ts) and
 * the registry of live tunnels (gateway/registry.ts) together, and owns the lifecycle: listen, heartbeat sweep, reconfigure and
 * graceful drain.
 * Knows nothing of the CLI, of Prometheus (it calls `MetricsHooks`) or of Redis.
 */
import type http from 'node:http'
import { WebSocketServer } from 'ws'
import type { Access } from '../auth/access.js'
import type { Config, ListenAddress } from '../config/options.js'
import { CLOSE_TIMEOUT_MS } from '../relay/bridge.js'
import { streamingWebSocketClass } from '../relay/handover.js'
import type { StreamSocketOptions } from '../relay/stream-socket.js'
import { GangwayError } from '../errors.js'
import { createClientErrorListener, createRequestListener } from './http.js'
import { silentLogger, type Logger } from '../log.js'
import { CloseCode } from '../protocol.js'
import { chooseSubprotocol } from './accept-upgrade.js'
import { createUpgradeListener } from './upgrade.js'
import { VERSION } from '../version.js'
import { noMetrics, type MetricsHooks } from './metrics-hooks.js'
import {
  createClientResolver,
  formatEndpoint,
  kProxyAddresses,
  parseClientHeader,
  parseTrustedProxies,
  type ProxiedSocket,
} from './client-address.js'
import { encodeProxyHeader, unmap } from './proxy-protocol.js'
import { prepareRecording } from '../relay/record.js'
import { loadTargetTls, type TargetTls } from '../targets/target-tls.js'
import { createListener } from './listener.js'
import { createTunnelRegistry, type RouteTotals, type TunnelInfo } from './registry.js'
import { createPasswordStore, type PasswordStore } from '../targets/login/passwords.js'
import { createLoginRunner } from './login.js'

export type { RouteTotals, TunnelInfo } from './registry.js'

export interface TunnelServerOptions {
  logger?: Logger
  /** Tokens, routes and target policy (`createAccessFromConfig`); without it every tunnel dials TARGET. */
  access?: Access
  /** Where tunnel counts, bytes, refusals and dial times are recorded (see `createMetrics`). */
  metrics?: MetricsHooks
  /** With several workers: this worker's index and the worker count, so tunnel ids never collide. */
  idSpace?: { index: number; count: number }
  /**
   * True for a token fingerprint whose revocation was heard after `since` (`--state-redis`,
   * `SharedState.heardRevoked`): refused before the dial, or closed as it opens if the dial had begun.
   */
  isRevoked?: (fingerprint: string, since: number) => boolean
  /** TLS settings for `tls://` targets, loaded by `loadTargetTls(config)`; loaded here when absent. */
  targetTls?: TargetTls
  /**
   * The password files of routes with a `login` (`createPasswordStore(config.routes)`); read here when
   * absent. The server closes it.
   */
  passwords?: PasswordStore
}

export interface TunnelStats {
  /** Tunnels open (upgraded, target connected), including ones closing. */
  tunnels: number
  /** Upgrades waiting for their target to answer. */
  dialing: number
  /** User-space bytes held for all tunnels, both directions (socket buffers, ws queues). */
  heldBytes: number
  draining: boolean
}

export interface TunnelServer {
  /** Starts listening; rejects with `GangwayError('ERR_LISTEN')` if the address cannot be used. */
  listen(): Promise<void>
  /** The bound address (a port of 0 replaced by the real one). */
  address(): ListenAddress
  /** The URL a WebSocket client connects to. */
  url(): string
  /** Stops accepting, lets live tunnels finish for up to `drainTimeoutMs`, then closes them with 1001. */
  close(options?: { drainTimeoutMs?: number }): Promise<void>
  stats(): TunnelStats
  /** Re-reads the TLS certificate and key (also done on file change); false if TLS is off or it failed. */
  reloadCertificates(): Promise<boolean>
  /** The tunnels open right now. */
  list(): TunnelInfo[]
  /** Per-route totals since the server started. */
  totals(): Record<string, RouteTotals>
  /** Refusals since the server started, by reason (`origin_denied`, `token_invalid`, …). */
  refusals(): Record<string, number>
  /** Closes one tunnel with 4410 (closed by an operator); false if no such tunnel is open. */
  closeTunnel(id: number): boolean
  /** Closes every tunnel a token admitted with 4410 "token revoked"; returns how many. */
  closeTokenTunnels(fingerprint: string): number
  /**
   * Swaps in a reloaded config and access gate (see reload.ts): new upgrades use them, live tunnels keep
   * what they started with. The caller pins options that need a restart (`listen`, TLS, …) to their
   * start-up values; only per-connection settings, the heartbeat and the message limits are read again.
   */
  reconfigure(
    config: Config,
    access: Access | undefined,
    targetTls?: TargetTls,
    passwords?: PasswordStore,
  ): void
  /** Re-reads the routes' password files (SIGHUP without `--config`); a file that fails keeps its password. */
  reloadPasswords(): void
}

export function createTunnelServer(
  config: Config,
  options: TunnelServerOptions = {},
): TunnelServer {
  const logger = options.logger ?? silentLogger
  const metrics = options.metrics ?? noMetrics
  const idStride = options.idSpace?.count ?? 1
  const idOffset = options.idSpace?.index ?? 0
  // What reconfigure() swaps; everything read per connection goes through these.
  let live = config
  let liveAccess = options.access
  let liveTargetTls = options.targetTls ?? loadTargetTls(config)
  for (const warning of liveTargetTls.warnings) logger.warn(warning)
  let livePasswords = options.passwords ?? createPasswordStore(config.routes, { logger })
  const login = createLoginRunner({ logger, metrics, passwords: () => livePasswords })
  const registry = createTunnelRegistry({
    logger,
    metrics,
    config: () => live,
    isRevoked: options.isRevoked,
  })
  const startedAt = Date.now()
  /** Refusals since start, by reason (`origin_denied`, …), for the status page. */
  const refusalCounts = new Map<string, number>()
  let lastId = 0
  let draining = false
  let heartbeatInterval: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined

  const onRequest = createRequestListener({ webRoot: config.webRoot, logger, health })
  const listener = createListener(config, {
    logger,
    onRequest,
    isClosing: () => closing !== undefined,
    tunnels: () => registry.size(),
  })
  const { httpServer } = listener
  metrics.setLiveBytes(registry.liveBytes)
  let clientOf = clientResolverFor(config)
  if (
    config.listen.kind === 'unix' &&
    !config.proxyProtocol &&
    options.access !== undefined &&
    config.maxAuthFailures > 0 &&
    parseTrustedProxies(config.trustProxy)?.unix !== true
  ) {
    logger.warn(
      'every client of a unix-socket listener has the same address: failed token attempts from any of them count for all; behind a proxy, give --trust-proxy unix',
    )
  }
  let wss = createWebSocketServer(config)
  let streamOptions = streamSocketOptions(config)
  httpServer.on('clientError', createClientErrorListener(logger))
  httpServer.on(
    'upgrade',
    createUpgradeListener({
      get config() {
        return live
      },
      get wss() {
        return wss
      },
      get streamOptions() {
        return streamOptions
      },
      logger,
      get access() {
        return liveAccess
      },
      nextId: () => ++lastId * idStride + idOffset,
      isDraining: () => draining,
      load: registry.load,
      dialStarted: registry.dialStarted,
      dialFinished: registry.dialFinished,
      refused(code, reason) {
        metrics.refused(code, reason)
        refusalCounts.set(reason, (refusalCounts.get(reason) ?? 0) + 1)
      },
      clientOf: (req) => formatEndpoint(clientOf(req)),
      clientIpOf: (req) => clientOf(req).address,
      get targetTls() {
        return liveTargetTls
      },
      targetPreamble,
      revokedSince: (print, since) => options.isRevoked?.(print, since) ?? false,
      login,
      startTunnel: registry.startTunnel,
    }),
  )

  function health(): Record<string, unknown> {
    return {
      status: draining ? 'draining' : 'ok',
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      tunnels: registry.size(),
    }
  }

  /** The PROXY header for the target: the real client as source, our listener as destination. */
  function targetPreamble(req: http.IncomingMessage): Buffer | undefined {
    if (live.targetProxyProtocol === 'off') return undefined
    const version = live.targetProxyProtocol === 'v1' ? 1 : 2
    const client = clientOf(req)
    const socket = req.socket as ProxiedSocket
    const proxied = socket[kProxyAddresses]
    const destinationAddress = proxied?.destinationAddress ?? socket.localAddress
    const destinationPort = proxied?.destinationPort ?? socket.localPort
    if (destinationAddress === undefined || destinationPort === undefined) {
      return encodeProxyHeader(version, undefined) // a unix listener: no addresses to report
    }
    return encodeProxyHeader(version, {
      sourceAddress: client.address,
      sourcePort: client.port ?? 0,
      destinationAddress: unmap(destinationAddress),
      destinationPort,
    })
  }

  async function listen(): Promise<void> {
    if (config.record !== undefined) {
      await prepareRecording(config.record).catch((err: Error) => {
        throw new GangwayError('ERR_LISTEN', `--record: ${err.message}`, { cause: err })
      })
    }
    await listener.listen()
    startHeartbeat()
  }

  function startHeartbeat(): void {
    clearInterval(heartbeatInterval)
    heartbeatInterval = undefined
    if (live.heartbeatMs > 0) {
      heartbeatInterval = setInterval(registry.sweepHeartbeats, live.heartbeatMs)
      heartbeatInterval.unref()
    }
  }

  function reconfigure(
    next: Config,
    access: Access | undefined,
    targetTls?: TargetTls,
    passwords?: PasswordStore,
  ): void {
    const previous = live
    live = next
    liveAccess = access
    if (passwords !== undefined && passwords !== livePasswords) {
      livePasswords.close()
      livePasswords = passwords
    }
    if (targetTls !== undefined && targetTls !== liveTargetTls) {
      liveTargetTls = targetTls
      for (const warning of targetTls.warnings) logger.warn(warning)
    }
    if (next.maxMessageBytes !== previous.maxMessageBytes || next.compress !== previous.compress) {
      wss = createWebSocketServer(next) // upgraded sockets do not depend on the server that made them
      streamOptions = streamSocketOptions(next)
    }
    if (
      next.trustProxy !== previous.trustProxy ||
      next.trustProxyHeader !== previous.trustProxyHeader
    ) {
      clientOf = clientResolverFor(next)
    }
    if (next.heartbeatMs !== previous.heartbeatMs && listener.listening && closing === undefined) {
      startHeartbeat()
    }
  }

  function address(): ListenAddress {
    return listener.address()
  }

  function close(closeOptions: { drainTimeoutMs?: number } = {}): Promise<void> {
    closing ??= drainAndClose(closeOptions.drainTimeoutMs ?? live.drainTimeoutMs)
    return closing
  }

  async function drainAndClose(drainTimeoutMs: number): Promise<void> {
    draining = true
    const closed = listener.stopAccepting()
    if (registry.load() > 0) {
      // gangway.v1 pages hear it now, so they can reconnect elsewhere before the 1001.
      registry.announceDrain(drainTimeoutMs)
      logger.debug('waiting for tunnels to finish', {
        tunnels: registry.size(),
        timeoutSeconds: drainTimeoutMs / 1000,
      })
      let drainTimer: NodeJS.Timeout | undefined
      await Promise.race([
        registry.whenIdle(),
        new Promise<void>((resolve) => (drainTimer = setTimeout(resolve, drainTimeoutMs))),
      ])
      clearTimeout(drainTimer)
      registry.closeAll(CloseCode.GOING_AWAY, 'server shutting down')
      await registry.whenIdle()
    }
    httpServer.closeAllConnections()
    await closed
    clearInterval(heartbeatInterval)
    livePasswords.close()
    await listener.removeSocketFile()
  }

  function stats(): TunnelStats {
    return { ...registry.stats(), draining }
  }

  return {
    listen,
    address,
    url: listener.url,
    close,
    stats,
    reloadCertificates: listener.reloadCertificates,
    list: registry.list,
    totals: registry.totals,
    refusals: () => Object.fromEntries(refusalCounts),
    closeTunnel: registry.closeTunnel,
    closeTokenTunnels: registry.closeTokenTunnels,
    reconfigure,
    reloadPasswords: () => livePasswords.reload(),
  }
}

/** @throws {ConfigError} for a bad `--trust-proxy` list or `--trust-proxy-header` name. */
export function clientResolverFor(config: Config) {
  return createClientResolver(
    parseTrustedProxies(config.trustProxy),
    parseClientHeader(config.trustProxyHeader),
  )
}

/** ws's defaults for `maxFragments` and `maxPendingAutoPongs`, kept on the streaming path. */
const WS_MAX_FRAGMENTS = 16 * 1024
const WS_MAX_PENDING_PONGS = 60

/** What the streaming codec is given for each upgraded socket (with `ws` or without it). */
function streamSocketOptions(config: Config): StreamSocketOptions {
  return {
    maxTextBytes: config.maxMessageBytes,
    maxTextFragments: WS_MAX_FRAGMENTS,
    maxPendingPongs: WS_MAX_PENDING_PONGS,
    closeTimeoutMs: CLOSE_TIMEOUT_MS,
  }
}

function createWebSocketServer(config: Config): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: config.maxMessageBytes,
    perMessageDeflate: config.compress,
    handleProtocols: chooseSubprotocol,
    // The streaming codec takes each upgraded socket from ws after the 101 (src/relay/handover.ts).
    WebSocket: streamingWebSocketClass(streamSocketOptions(config)),
    // ws >= 8.22 option, not yet in @types/ws: how long a close handshake may take before the socket is cut.
    ...({ closeTimeout: CLOSE_TIMEOUT_MS } as object),
  })
}
