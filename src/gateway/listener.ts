/**
 * @module gateway/listener
 * The socket side of the tunnel server: the http.Server, the front server that reads a PROXY-protocol
 * header and runs the TLS handshake (certificate loaded on listen, reloaded when its files change) before
 * handing a connection to it, binding a TCP or unix address (stale socket files, permissions), the bound
 * address and URL, and stopping. It also owns the handshake's limits: one deadline from accept to a
 * complete request head (PROXY header and TLS included), and a cap on the connections not (yet) carrying
 * a tunnel. Knows nothing of WebSockets or tunnels beyond their number.
 */
import http from 'node:http'
import net from 'node:net'
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls'
import { chmod, lstat, unlink } from 'node:fs/promises'
import type { Config, ListenAddress } from '../config/options.js'
import { GangwayError } from '../errors.js'
import { logRejection, type Logger } from '../log.js'
import { loadTlsOptions, tlsSettings, watchTlsFiles } from './tls.js'
import { kProxyAddresses, type ProxiedSocket } from './client-address.js'
import { readProxyHeader } from './proxy-protocol.js'
import { writeHttpStatus } from './http.js'

export interface ListenerOptions {
  logger: Logger
  /** Answers plain HTTP requests (health, static files, the shim). */
  onRequest: http.RequestListener
  /** True once the server is closing: certificate reloads are refused from then on. */
  isClosing: () => boolean
  /** Tunnels open now: each holds one accepted connection that is past its handshake. */
  tunnels: () => number
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

/** A connection accepted by the front server, until its request head is complete. */
interface Handshake {
  readonly raw: net.Socket
  /** The TLS socket over `raw`, once TLS is set up. */
  secure: TLSSocket | undefined
  /** True once the socket is the HTTP server's (PROXY header read, TLS done): a head may be underway. */
  handed: boolean
  timer: NodeJS.Timeout | undefined
}

/** The handshake of a connection, on the socket the HTTP server sees (raw, or TLS over it). */
const kHandshake = Symbol('gangway.handshake')
type HandshakeSocket = net.Socket & { [kHandshake]?: Handshake }

/** Drops beyond --max-handshakes are logged at most this often (with the count meanwhile). */
const DROP_LOG_INTERVAL_MS = 10_000

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
  // Always plain HTTP: TLS, when configured, is run by the front server below, so that one deadline can
  // cover the TLS handshake too (https.Server's own handshake timeout is an idle timer: a client sending a
  // byte now and then keeps it open forever, and the request-head timeouts only start after TLS).
  const httpServer = http.createServer(httpOptions, onRequest)
  let secureContext: SecureContext | undefined // loaded in listen()
  // With --proxy-protocol or --cert a plain TCP server accepts each connection, reads its PROXY header,
  // runs TLS, then hands the socket (the rest of its bytes unread) to the HTTP server as if it had
  // accepted it itself.
  const front =
    config.proxyProtocol || tls !== undefined ? net.createServer(frontOnConnection) : undefined
  const listener: net.Server = front ?? httpServer
  if (front === undefined) httpServer.on('connection', httpOnConnection)
  // A complete request head (an upgrade or a plain request) ends the handshake.
  httpServer.prependListener('upgrade', httpOnHead)
  httpServer.prependListener('request', httpOnHead)

  /** Connections accepted and not closed; those not carrying a tunnel are in their handshake or refusal. */
  let open = 0
  /** Accepted by the front server, not yet the HTTP server's (its closeAllConnections does not see them). */
  const beforeHttp = new Set<net.Socket>()
  let dropped = 0
  let lastDropLog = -Infinity

  /** Counts a new connection, or drops it when --max-handshakes connections are already in handshake. */
  function admitConnection(socket: net.Socket): boolean {
    const max = config.maxHandshakes
    if (max > 0 && open - options.tunnels() >= max) {
      socket.on('error', () => undefined)
      socket.destroy()
      dropped++
      const now = Date.now()
      if (now - lastDropLog >= DROP_LOG_INTERVAL_MS) {
        logger.warn('connection dropped: too many connections in their handshake', {
          limit: max,
          dropped,
        })
        lastDropLog = now
        dropped = 0
      }
      return false
    }
    open++
    socket.on('close', socketOnClose)
    return true
  }

  /** One listener for every connection ('close' comes once): no closure or once-wrapper per connection. */
  function socketOnClose(): void {
    open--
  }

  function httpOnConnection(socket: net.Socket): void {
    // Without a front server, Node's headersTimeout already runs from accept: only count the connection.
    admitConnection(socket)
  }

  function httpOnHead(req: http.IncomingMessage): void {
    const handshake = (req.socket as HandshakeSocket)[kHandshake]
    if (handshake === undefined) return
    clearTimeout(handshake.timer)
    handshake.timer = undefined
  }

  function frontOnConnection(socket: net.Socket): void {
    if (!admitConnection(socket)) return
    socket.on('error', () => socket.destroy())
    // One deadline from accept to a complete request head: the PROXY header, TLS and the head together.
    const handshake: Handshake = { raw: socket, secure: undefined, handed: false, timer: undefined }
    handshake.timer = setTimeout(() => handshakeOnTimeout(handshake), handshakeMs)
    beforeHttp.add(socket)
    socket.once('close', function rawOnClose() {
      clearTimeout(handshake.timer)
      beforeHttp.delete(socket)
    })
    ;(socket as HandshakeSocket)[kHandshake] = handshake
    if (!config.proxyProtocol) {
      frontOnReady(handshake)
      return
    }
    readProxyHeader(socket, handshakeMs)
      .then(
        function frontOnHeader(addresses) {
          if (addresses !== undefined) (socket as ProxiedSocket)[kProxyAddresses] = addresses
          frontOnReady(handshake)
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

  function frontOnReady(handshake: Handshake): void {
    const { raw } = handshake
    if (raw.destroyed) return
    if (tls === undefined) {
      handshake.handed = true
      beforeHttp.delete(raw)
      httpServer.emit('connection', raw)
      return
    }
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext,
      ALPNProtocols: ['http/1.1'],
    })
    handshake.secure = secure
    ;(secure as HandshakeSocket)[kHandshake] = handshake
    const proxied = (raw as ProxiedSocket)[kProxyAddresses]
    if (proxied !== undefined) (secure as ProxiedSocket)[kProxyAddresses] = proxied
    secure.on('error', function secureOnError(err: Error) {
      logger.debug('tls handshake failed', { peer: raw.remoteAddress, error: err.message })
      secure.destroy()
    })
    secure.once('close', function secureOnClose() {
      clearTimeout(handshake.timer)
      raw.destroy()
    })
    secure.once('secure', function secureOnSecure() {
      if (secure.destroyed) return
      handshake.handed = true
      beforeHttp.delete(raw)
      httpServer.emit('connection', secure)
    })
  }

  /** The deadline passed: a request head underway gets 408 (as Node's own timeout answers), else nothing. */
  function handshakeOnTimeout(handshake: Handshake): void {
    handshake.timer = undefined
    const socket = handshake.secure ?? handshake.raw
    logger.debug('handshake timed out', { peer: handshake.raw.remoteAddress })
    if (handshake.handed && socket.writable) writeHttpStatus(socket, 408, 'request timed out')
    else handshake.raw.destroy()
  }

  async function listen(): Promise<void> {
    const where = config.listen
    if (tls !== undefined) {
      secureContext = createSecureContext(await loadTlsOptions(tls))
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
      secureContext = createSecureContext(await loadTlsOptions(tls))
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
    for (const socket of beforeHttp) socket.destroy() // still in their PROXY header or TLS handshake
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
