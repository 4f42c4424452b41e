/**
 * @module server
 * The tunnel server: an http.Server whose upgrades become tunnels, plus its lifecycle (listen, heartbeat
 * sweep, graceful drain) and the one-line-per-connection log. Owns the registry of live tunnels.
 */
import http from 'node:http'
import net from 'node:net'
import { chmod, lstat, unlink } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
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

export interface TunnelServerOptions {
  logger?: Logger
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
}

/** Cap on how often Node checks for slow request heads; the handshake timeout is enforced at this grain. */
const MAX_CHECK_INTERVAL_MS = 1_000

export function createTunnelServer(
  config: Config,
  options: TunnelServerOptions = {},
): TunnelServer {
  const logger = options.logger ?? silentLogger
  const targetText = describeTarget(config.target)
  const tunnels = new Map<number, Tunnel>()
  const startedAt = Date.now()
  let lastId = 0
  let dialing = 0
  let draining = false
  let idleWaiters: Array<() => void> = []
  let heartbeatInterval: NodeJS.Timeout | undefined
  let closing: Promise<void> | undefined

  const handshakeMs = config.handshakeTimeoutMs
  const httpServer = http.createServer(
    {
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: handshakeMs,
      requestTimeout: handshakeMs,
      connectionsCheckingInterval: Math.max(50, Math.min(MAX_CHECK_INTERVAL_MS, handshakeMs / 4)),
    },
    createRequestListener({ webRoot: config.webRoot, logger, health }),
  )
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: config.maxMessageBytes,
    perMessageDeflate: config.compress,
    handleProtocols: chooseSubprotocol,
    // ws >= 8.22 option, not yet in @types/ws: how long a close handshake may take before the socket is cut.
    ...({ closeTimeout: CLOSE_TIMEOUT_MS } as object),
  })

  httpServer.on('clientError', createClientErrorListener(logger))
  httpServer.on(
    'upgrade',
    createUpgradeListener({
      config,
      wss,
      logger,
      nextId: () => ++lastId,
      isDraining: () => draining,
      load: () => tunnels.size + dialing,
      dialStarted: () => void dialing++,
      dialFinished,
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

  function dialFinished(): void {
    dialing--
    notifyIfIdle()
  }

  function startTunnel(
    id: number,
    ws: WebSocket,
    wsSocket: Duplex,
    tcp: net.Socket,
    client: string,
  ): void {
    const tunnel = bridge(ws, wsSocket, tcp, {
      id,
      highWaterMarkBytes: config.highWaterMarkBytes,
      textPolicy: config.textPolicy,
      idleTimeoutMs: config.idleTimeoutMs,
    })
    tunnels.set(id, tunnel)
    logger.info('tunnel open', {
      conn: id,
      client,
      target: targetText,
      subprotocol: ws.protocol || undefined,
    })
    if (openChannel.hasSubscribers) openChannel.publish({ id, client, target: targetText })
    void tunnel.closed.then(function tunnelOnClosed(result: TunnelResult) {
      tunnels.delete(id)
      logger.info('tunnel closed', {
        conn: id,
        client,
        target: targetText,
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
    if (where.kind === 'unix') await removeStaleSocket(where.path)
    await new Promise<void>((resolve, reject) => {
      function onError(err: NodeJS.ErrnoException): void {
        httpServer.off('listening', onListening)
        reject(listenError(err, where))
      }
      function onListening(): void {
        httpServer.off('error', onError)
        resolve()
      }
      httpServer.once('error', onError)
      httpServer.once('listening', onListening)
      if (where.kind === 'unix') listenUnix(where.path)
      else httpServer.listen({ host: where.host, port: where.port })
    })
    if (where.kind === 'unix') await chmod(where.path, config.listenMode)
    httpServer.on('error', httpOnError)
    if (config.heartbeatMs > 0) {
      heartbeatInterval = setInterval(sweepHeartbeats, config.heartbeatMs)
      heartbeatInterval.unref()
    }
  }

  /** Binds with a umask that already yields `listenMode`, so the socket is never more open than asked. */
  function listenUnix(path: string): void {
    const previous = process.umask(~config.listenMode & 0o777)
    try {
      httpServer.listen(path) // a pipe is bound synchronously within this call
    } finally {
      process.umask(previous)
    }
  }

  function httpOnError(err: Error): void {
    logger.error('listener error', { error: err.message })
  }

  function address(): ListenAddress {
    const bound = httpServer.address()
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
    return `ws://${host.includes(':') ? `[${host}]` : host}:${bound.port}/`
  }

  function close(closeOptions: { drainTimeoutMs?: number } = {}): Promise<void> {
    closing ??= drainAndClose(closeOptions.drainTimeoutMs ?? config.drainTimeoutMs)
    return closing
  }

  async function drainAndClose(drainTimeoutMs: number): Promise<void> {
    draining = true
    const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()))
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

  return { listen, address, url, close, stats }
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
