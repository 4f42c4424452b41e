/**
 * @module server
 * The tunnel server: an http.Server whose upgrades become tunnels, plus its lifecycle (listen, heartbeat
 * sweep, graceful drain) and the one-line-per-connection log. Owns the registry of live tunnels.
 */
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { chmod, lstat, unlink } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { Access, Admission } from './auth/access.js'
import type { Config, ListenAddress } from './config.js'
import { bridge, CLOSE_TIMEOUT_MS, type Tunnel, type TunnelResult } from './bridge.js'
import { describeTarget } from './dial.js'
import { GangwayError } from './errors.js'
import { createClientErrorListener, createRequestListener } from './http.js'
import { silentLogger, type Logger } from './log.js'
import { CloseCode, SUBPROTOCOL_BINARY, SUBPROTOCOL_V1 } from './protocol.js'
import { createUpgradeListener } from './upgrade.js'
import { closeChannel, openChannel } from './events.js'
import { VERSION } from './version.js'
import { noMetrics, type TunnelMetrics } from './metrics.js'
import { loadTlsOptions, watchTlsFiles, type TlsSettings } from './tls.js'
import {
  createClientResolver,
  formatEndpoint,
  kProxyAddresses,
  parseTrustedProxies,
  type ProxiedSocket,
} from './client-address.js'
import { encodeProxyHeader, readProxyHeader, unmap } from './proxy-protocol.js'
import { prepareRecordingDir, startRecording, type Recorder } from './record.js'
import { loadTargetTls, type TargetTls } from './target-tls.js'

export interface TunnelServerOptions {
  logger?: Logger
  /** Tokens, routes and target policy (`createAccessFromConfig`); without it every tunnel dials TARGET. */
  access?: Access
  /** Where tunnel counts, bytes, refusals and dial times are recorded (see `createMetrics`). */
  metrics?: Omit<TunnelMetrics, 'registry'>
  /** With several workers: this worker's index and the worker count, so tunnel ids never collide. */
  idSpace?: { index: number; count: number }
  /** True for a token fingerprint revoked meanwhile (`--state-redis`): its tunnel closes as it opens. */
  isRevoked?: (fingerprint: string) => boolean
  /** TLS settings for `tls://` targets, loaded by `loadTargetTls(config)`; loaded here when absent. */
  targetTls?: TargetTls
}

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
  /** Closes one tunnel with 4410 (closed by an operator); false if no such tunnel is open. */
  closeTunnel(id: number): boolean
  /** Closes every tunnel a token admitted with 4410 "token revoked"; returns how many. */
  closeTokenTunnels(fingerprint: string): number
  /**
   * Swaps in a reloaded config and access gate (see reload.ts): new upgrades use them, live tunnels keep
   * what they started with. The caller pins options that need a restart (`listen`, TLS, …) to their
   * start-up values; only per-connection settings, the heartbeat and the message limits are read again.
   */
  reconfigure(config: Config, access: Access | undefined, targetTls?: TargetTls): void
}

/** Cap on how often Node checks for slow request heads; the handshake timeout is enforced at this grain. */
const MAX_CHECK_INTERVAL_MS = 1_000

export function createTunnelServer(
  config: Config,
  options: TunnelServerOptions = {},
): TunnelServer {
  const logger = options.logger ?? silentLogger
  const metrics = options.metrics ?? noMetrics
  const idStride = options.idSpace?.count ?? 1
  const idOffset = options.idSpace?.index ?? 0
  const tls = tlsSettings(config)
  let stopWatchingTls: (() => void) | undefined
  // What reconfigure() swaps; everything read per connection goes through these.
  let live = config
  let liveAccess = options.access
  let liveTargetTls = options.targetTls ?? loadTargetTls(config)
  for (const warning of liveTargetTls.warnings) logger.warn(warning)
  const tunnels = new Map<number, Tunnel>()
  const details = new Map<number, Omit<TunnelInfo, 'bytesUp' | 'bytesDown'>>()
  const closedTotals = new Map<string, RouteTotals>()
  const startedAt = Date.now()
  let lastId = 0
  let dialing = 0
  let draining = false
  let idleWaiters: Array<() => void> = []
  let heartbeatInterval: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined

  const handshakeMs = config.handshakeTimeoutMs
  const httpOptions: http.ServerOptions = {
    maxHeaderSize: config.maxHeaderBytes,
    headersTimeout: handshakeMs,
    requestTimeout: handshakeMs,
    connectionsCheckingInterval: Math.max(50, Math.min(MAX_CHECK_INTERVAL_MS, handshakeMs / 4)),
  }
  const onRequest = createRequestListener({ webRoot: config.webRoot, logger, health })
  // With TLS the certificate is loaded (and validated) in listen(): until then the server has none.
  const httpServer: http.Server =
    tls === undefined
      ? http.createServer(httpOptions, onRequest)
      : https.createServer(httpOptions, onRequest)
  metrics.setLiveBytes(liveBytes)
  let clientOf = createClientResolver(parseTrustedProxies(config.trustProxy))
  // With --proxy-protocol a plain TCP server reads each connection's PROXY header first, then hands the
  // socket (the rest of its bytes unread) to the HTTP(S) server as if it had accepted it itself.
  const front = config.proxyProtocol ? net.createServer(frontOnConnection) : undefined
  const listener: net.Server = front ?? httpServer
  let wss = createWebSocketServer(config)

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
      logger,
      get access() {
        return liveAccess
      },
      nextId: () => ++lastId * idStride + idOffset,
      isDraining: () => draining,
      load: () => tunnels.size + dialing,
      dialStarted: () => void dialing++,
      dialFinished,
      refused: (code) => metrics.refused(code),
      clientOf: (req) => formatEndpoint(clientOf(req)),
      clientIpOf: (req) => clientOf(req).address,
      get targetTls() {
        return liveTargetTls
      },
      targetPreamble,
      startTunnel,
    }),
  )

  function health(): Record<string, unknown> {
    return {
      status: draining ? 'draining' : 'ok',
      version: VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      tunnels: tunnels.size,
    }
  }

  function dialFinished(ms: number, ok: boolean): void {
    dialing--
    metrics.dialed(ms, ok)
    notifyIfIdle()
  }

  function recordingFor(id: number, client: string, targetText: string): Recorder | undefined {
    if (live.recordDir === undefined) return undefined
    return startRecording(live.recordDir, { conn: id, client, target: targetText }, (err) =>
      logger.error('recording failed; the tunnel goes on unrecorded', {
        conn: id,
        error: err.message,
      }),
    )
  }

  function frontOnConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy())
    readProxyHeader(socket, handshakeMs).then(
      function frontOnHeader(addresses) {
        if (addresses !== undefined) (socket as ProxiedSocket)[kProxyAddresses] = addresses
        httpServer.emit('connection', socket)
      },
      function frontOnBadHeader(err: Error) {
        logger.info('connection dropped: no valid PROXY header', {
          peer: socket.remoteAddress,
          error: err.message,
        })
        socket.destroy()
      },
    )
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

  function* liveBytes(): Iterable<{ route: string; up: number; down: number }> {
    for (const [id, tunnel] of tunnels)
      yield { route: details.get(id)?.route ?? ROUTE, ...tunnel.bytes() }
  }

  function startTunnel(
    id: number,
    ws: WebSocket,
    wsSocket: Duplex,
    tcp: net.Socket,
    client: string,
    admission: Admission,
  ): void {
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
    tunnels.set(id, tunnel)
    details.set(id, {
      id,
      client,
      target: targetText,
      route: routeName,
      token: admission.fingerprint,
      openedAt: Date.now(),
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
    if (admission.fingerprint !== undefined && options.isRevoked?.(admission.fingerprint)) {
      tunnel.close(CloseCode.CLOSED_BY_OPERATOR, TOKEN_REVOKED)
    }
    void tunnel.closed.then(function tunnelOnClosed(result: TunnelResult) {
      tunnels.delete(id)
      details.delete(id)
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
    })
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
    for (const tunnel of tunnels.values()) tunnel.heartbeat()
  }

  async function listen(): Promise<void> {
    const where = config.listen
    if (config.recordDir !== undefined) {
      await prepareRecordingDir(config.recordDir).catch((err: NodeJS.ErrnoException) => {
        throw new GangwayError(
          'ERR_LISTEN',
          `cannot create the --record directory ${config.recordDir}: ${err.code ?? err.message}`,
          { cause: err },
        )
      })
    }
    if (tls !== undefined) {
      ;(httpServer as https.Server).setSecureContext(await loadTlsOptions(tls))
    }
    if (where.kind === 'unix') await removeStaleSocket(where.path)
    await new Promise<void>((resolve, reject) => {
      function onError(err: NodeJS.ErrnoException): void {
        listener.off('listening', onListening)
        reject(listenError(err, where))
      }
      function onListening(): void {
        listener.off('error', onError)
        resolve()
      }
      listener.once('error', onError)
      listener.once('listening', onListening)
      if (where.kind === 'unix') listenUnix(where.path)
      else listener.listen({ host: where.host, port: where.port })
    })
    if (where.kind === 'unix') await chmod(where.path, config.listenMode)
    listener.on('error', httpOnError)
    if (tls !== undefined) stopWatchingTls = watchTlsFiles(tls, certificatesOnChange)
    startHeartbeat()
  }

  function startHeartbeat(): void {
    clearInterval(heartbeatInterval)
    heartbeatInterval = undefined
    if (live.heartbeatMs > 0) {
      heartbeatInterval = setInterval(sweepHeartbeats, live.heartbeatMs)
      heartbeatInterval.unref()
    }
  }

  function reconfigure(next: Config, access: Access | undefined, targetTls?: TargetTls): void {
    const previous = live
    live = next
    liveAccess = access
    if (targetTls !== undefined && targetTls !== liveTargetTls) {
      liveTargetTls = targetTls
      for (const warning of targetTls.warnings) logger.warn(warning)
    }
    if (next.maxMessageBytes !== previous.maxMessageBytes || next.compress !== previous.compress) {
      wss = createWebSocketServer(next) // upgraded sockets do not depend on the server that made them
    }
    if (next.trustProxy !== previous.trustProxy) {
      clientOf = createClientResolver(parseTrustedProxies(next.trustProxy))
    }
    if (next.heartbeatMs !== previous.heartbeatMs && listener.listening && closing === undefined) {
      startHeartbeat()
    }
  }

  function certificatesOnChange(): void {
    void reloadCertificates()
  }

  /**
   * Re-reads the certificate and key; new handshakes use them, live tunnels keep their sessions. A pair
   * that fails to load or does not match is logged and the previous one stays in use.
   */
  async function reloadCertificates(): Promise<boolean> {
    if (tls === undefined || closing !== undefined) return false
    try {
      ;(httpServer as https.Server).setSecureContext(await loadTlsOptions(tls))
      logger.info('tls certificate reloaded', { cert: tls.certFile })
      return true
    } catch (err) {
      logger.error('tls certificate reload failed; keeping the previous one', {
        error: err instanceof Error ? err.message : String(err),
      })
      return false
    }
  }

  /** Binds with a umask that already yields `listenMode`, so the socket is never more open than asked. */
  function listenUnix(path: string): void {
    const previous = process.umask(~config.listenMode & 0o777)
    try {
      listener.listen(path) // a pipe is bound synchronously within this call
    } finally {
      process.umask(previous)
    }
  }

  function httpOnError(err: Error): void {
    logger.error('listener error', { error: err.message })
  }

  function address(): ListenAddress {
    const bound = listener.address()
    if (bound === null) return config.listen
    if (typeof bound === 'string') return { kind: 'unix', path: bound }
    return { kind: 'tcp', host: bound.address, port: bound.port }
  }

  function url(): string {
    const bound = address()
    if (bound.kind === 'unix') return `ws+unix:${bound.path}:/`
    const host =
      bound.host === undefined || bound.host === '::' || bound.host === '0.0.0.0'
        ? 'localhost'
        : bound.host
    const scheme = tls === undefined ? 'ws' : 'wss'
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${bound.port}/`
  }

  function close(closeOptions: { drainTimeoutMs?: number } = {}): Promise<void> {
    closing ??= drainAndClose(closeOptions.drainTimeoutMs ?? live.drainTimeoutMs)
    return closing
  }

  async function drainAndClose(drainTimeoutMs: number): Promise<void> {
    draining = true
    stopWatchingTls?.()
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()))
    if (front !== undefined) httpServer.close() // its idle-connection checks stop too
    httpServer.closeIdleConnections()
    if (tunnels.size > 0 || dialing > 0) {
      logger.debug('waiting for tunnels to finish', {
        tunnels: tunnels.size,
        timeoutSeconds: drainTimeoutMs / 1000,
      })
      let drainTimer: NodeJS.Timeout | undefined
      await Promise.race([
        whenIdle(),
        new Promise<void>((resolve) => (drainTimer = setTimeout(resolve, drainTimeoutMs))),
      ])
      clearTimeout(drainTimer)
      for (const tunnel of tunnels.values())
        tunnel.close(CloseCode.GOING_AWAY, 'server shutting down')
      await whenIdle()
    }
    httpServer.closeAllConnections()
    await closed
    clearInterval(heartbeatInterval)
    if (config.listen.kind === 'unix') await unlink(config.listen.path).catch(() => undefined)
  }

  function stats(): TunnelStats {
    let heldBytes = 0
    for (const tunnel of tunnels.values()) heldBytes += tunnel.heldBytes()
    return { tunnels: tunnels.size, dialing, heldBytes, draining }
  }

  function list(): TunnelInfo[] {
    const out: TunnelInfo[] = []
    for (const [id, tunnel] of tunnels) {
      const info = details.get(id)
      if (info === undefined) continue
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
    const tunnel = tunnels.get(id)
    if (tunnel === undefined) return false
    logger.info('closing tunnel on operator request', { conn: id })
    tunnel.close(CloseCode.CLOSED_BY_OPERATOR, 'closed by an operator')
    return true
  }

  function closeTokenTunnels(fingerprint: string): number {
    let count = 0
    for (const [id, info] of details) {
      if (info.token !== fingerprint) continue
      tunnels.get(id)?.close(CloseCode.CLOSED_BY_OPERATOR, TOKEN_REVOKED)
      count++
    }
    return count
  }

  return {
    listen,
    address,
    url,
    close,
    stats,
    reloadCertificates,
    list,
    totals,
    closeTunnel,
    closeTokenTunnels,
    reconfigure,
  }
}

function createWebSocketServer(config: Config): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: config.maxMessageBytes,
    perMessageDeflate: config.compress,
    handleProtocols: chooseSubprotocol,
    // ws >= 8.22 option, not yet in @types/ws: how long a close handshake may take before the socket is cut.
    ...({ closeTimeout: CLOSE_TIMEOUT_MS } as object),
  })
}

/** Close reason of the tunnels of a revoked token (code 4410). */
export const TOKEN_REVOKED = 'token revoked'

/** The route label of tunnels that no named route or resolver admitted (the fixed TARGET). */
const ROUTE = 'default'

function tlsSettings(config: Config): TlsSettings | undefined {
  if (config.tlsCert === undefined) return undefined
  return {
    certFile: config.tlsCert,
    keyFile: config.tlsKey ?? config.tlsCert,
    minVersion: config.tlsMinVersion,
    ciphers: config.tlsCiphers,
  }
}

/**
 * Select `gangway.v1` when offered, else echo `binary` (noVNC, websockify clients), else nothing; never
 * refuse, and never select a `gangway.bearer.` entry (it carries a secret).
 */
export function chooseSubprotocol(offered: Set<string>): string | false {
  if (offered.has(SUBPROTOCOL_V1)) return SUBPROTOCOL_V1
  return offered.has(SUBPROTOCOL_BINARY) ? SUBPROTOCOL_BINARY : false
}

function listenError(err: NodeJS.ErrnoException, where: ListenAddress): GangwayError {
  const text = where.kind === 'unix' ? `unix:${where.path}` : `${where.host ?? '*'}:${where.port}`
  const why =
    err.code === 'EADDRINUSE'
      ? 'address already in use'
      : err.code === 'EACCES'
        ? 'permission denied'
        : err.code === 'EADDRNOTAVAIL'
          ? 'address not available on this machine'
          : (err.code ?? err.message)
  return new GangwayError('ERR_LISTEN', `cannot listen on ${text}: ${why}`, { cause: err })
}

/** A unix socket file left by a previous run is removed; one with a live listener is left alone. */
async function removeStaleSocket(path: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined)
  if (info === undefined) return
  if (!info.isSocket()) return // listen() will fail with EADDRINUSE and say so
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path })
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
  if (!live) await unlink(path)
}
