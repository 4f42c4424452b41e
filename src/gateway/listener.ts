/**
 * @module gateway/listener
 * The socket side of the tunnel server: the http(s).Server (certificate loaded on listen, reloaded when its
 * files change), the PROXY-protocol front server when asked, binding a TCP or unix address (stale socket
 * files, permissions), the bound address and URL, and stopping. Knows nothing of WebSockets or tunnels.
 */
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { chmod, lstat, unlink } from 'node:fs/promises'
import type { Config, ListenAddress } from '../config/options.js'
import { GangwayError } from '../errors.js'
import { logRejection, type Logger } from '../log.js'
import { loadTlsOptions, tlsSettings, watchTlsFiles } from './tls.js'
import { kProxyAddresses, type ProxiedSocket } from './client-address.js'
import { readProxyHeader } from './proxy-protocol.js'

export interface ListenerOptions {
  logger: Logger
  /** Answers plain HTTP requests (health, static files, the shim). */
  onRequest: http.RequestListener
  /** True once the server is closing: certificate reloads are refused from then on. */
  isClosing: () => boolean
}

/** The listening side of one tunnel server. */
export interface Listener {
  /** Parses requests and upgrades; behind the front server with `--proxy-protocol`. */
  readonly httpServer: http.Server
  /** Binds the address (after loading the certificate, if any); rejects with `ERR_LISTEN`. */
  listen: () => Promise<void>
  readonly listening: boolean
  address: () => ListenAddress
  url: () => string
  reloadCertificates: () => Promise<boolean>
  /** Stops accepting and closes idle connections; resolves once the listening socket has closed. */
  stopAccepting: () => Promise<void>
  /** Removes the socket file of a unix listener (after it has closed). */
  removeSocketFile: () => Promise<void>
}

/** Cap on how often Node checks for slow request heads; the handshake timeout is enforced at this grain. */
const MAX_CHECK_INTERVAL_MS = 1_000

export function createListener(config: Config, options: ListenerOptions): Listener {
  const { logger, onRequest } = options
  const tls = tlsSettings(config)
  let stopWatchingTls: (() => void) | undefined

  const handshakeMs = config.handshakeTimeoutMs
  const httpOptions: http.ServerOptions = {
    maxHeaderSize: config.maxHeaderBytes,
    headersTimeout: handshakeMs,
    requestTimeout: handshakeMs,
    connectionsCheckingInterval: Math.max(50, Math.min(MAX_CHECK_INTERVAL_MS, handshakeMs / 4)),
  }
  // With TLS the certificate is loaded (and validated) in listen(): until then the server has none.
  const httpServer: http.Server =
    tls === undefined
      ? http.createServer(httpOptions, onRequest)
      : https.createServer(httpOptions, onRequest)
  // With --proxy-protocol a plain TCP server reads each connection's PROXY header first, then hands the
  // socket (the rest of its bytes unread) to the HTTP(S) server as if it had accepted it itself.
  const front = config.proxyProtocol ? net.createServer(frontOnConnection) : undefined
  const listener: net.Server = front ?? httpServer

  function frontOnConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy())
    readProxyHeader(socket, handshakeMs)
      .then(
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
      .catch(function frontOnInternalError(err: unknown) {
        logRejection(logger, 'connection dropped: internal error', { peer: socket.remoteAddress })(
          err,
        )
        socket.destroy()
      })
  }

  async function listen(): Promise<void> {
    const where = config.listen
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
  }

  function certificatesOnChange(): void {
    reloadCertificates().catch(logRejection(logger, 'tls certificate reload failed'))
  }

  /**
   * Re-reads the certificate and key; new handshakes use them, live tunnels keep their sessions. A pair
   * that fails to load or does not match is logged and the previous one stays in use.
   */
  async function reloadCertificates(): Promise<boolean> {
    if (tls === undefined || options.isClosing()) return false
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

  function stopAccepting(): Promise<void> {
    stopWatchingTls?.()
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()))
    if (front !== undefined) httpServer.close() // its idle-connection checks stop too
    httpServer.closeIdleConnections()
    return closed
  }

  async function removeSocketFile(): Promise<void> {
    if (config.listen.kind === 'unix') await unlink(config.listen.path).catch(() => undefined)
  }

  return {
    httpServer,
    listen,
    get listening() {
      return listener.listening
    },
    address,
    url,
    reloadCertificates,
    stopAccepting,
    removeSocketFile,
  }
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
