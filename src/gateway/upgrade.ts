/**
 * @module gateway/upgrade
 * The 'upgrade' listener: validate the handshake, apply connection limits, **dial the target before
 * accepting**, then complete the upgrade and hand both sockets to the bridge, so that `open` in the
 * browser means "TCP connected". With an access gate, the token is resolved and the target checked first
 * (`auth/access.ts`). A refusal or a failed dial is reported as a documented close code (or an HTTP status
 * with `--refuse-with http`), and logged once, with the token's fingerprint, never the token. Knows nothing
 * of bytes after the upgrade.
 */
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { WebSocketServer } from 'ws'
import { relaySocketOf, type RelaySocket } from '../relay/handover.js'
import type { Admission, Access, Refusal } from '../auth/access.js'
import { redactUrl } from '../auth/carriers.js'
import { clientNamedTarget } from '../auth/named-target.js'
import type { Config, Target } from '../config/options.js'
import { dial, describeTarget } from '../targets/dial.js'
import { TunnelError, tunnelError } from '../errors.js'
import { writeHttpStatus } from './http.js'
import type { Logger } from '../log.js'
import { refuseChannel } from '../events.js'
import { Cancel } from '../cancel.js'
import { refusalReason, type DialResult, type RefusalReason } from './metrics-hooks.js'
import { extensionsProblem, subprotocolProblem } from './handshake.js'
import { acceptUpgrade, needsWs } from './accept-upgrade.js'
import type { StreamSocketOptions } from '../relay/stream-socket.js'
import type { LoginRunner, LoginSession } from './login.js'
import {
  tlsRefusalReason,
  tlsSettingsFor,
  type TargetTls,
  type TargetTlsSettings,
} from '../targets/target-tls.js'

/** What the upgrade listener needs from the server that owns it. */
export interface UpgradeContext {
  /** Read once per upgrade (a reload may swap it; an upgrade runs to its end on the one it started with). */
  readonly config: Config
  /** Read once per upgrade, like `config`: completes upgrades that may negotiate permessage-deflate. */
  readonly wss: WebSocketServer
  /** Read once per upgrade, like `config`: for the streaming codec of an upgrade completed without `ws`. */
  readonly streamOptions: StreamSocketOptions
  readonly logger: Logger
  /**
   * The access gate (tokens, policy); undefined = no auth, every tunnel dials `config.target`. Read once
   * per upgrade, like `config`.
   */
  readonly access?: Access | undefined
  nextId(): number
  isDraining(): boolean
  /** Tunnels open plus dials in progress. */
  load(): number
  dialStarted(): void
  /**
   * An admission ended after `ms`: how the dial of the target ended, or undefined when it was refused
   * before any dial (a bad token, a forbidden Origin or target).
   */
  dialFinished(ms: number, result: DialResult | undefined): void
  /** A connection was refused (before or right after the upgrade) with this close code and reason. */
  refused(closeCode: number, reason: RefusalReason): void
  /** The real client of a request, as `ip:port` (see client-address.ts). */
  clientOf(req: IncomingMessage): string
  /** The real client's IP address: the key failed attempts are counted under. */
  clientIpOf(req: IncomingMessage): string
  /** Loaded TLS settings for `tls://` targets. Read once per upgrade, like `config`. */
  readonly targetTls: TargetTls
  /** Bytes to send the target before any relayed byte (a PROXY protocol header), if any. */
  targetPreamble(req: IncomingMessage): Buffer | undefined
  /**
   * True when the token `fingerprint` was revoked after `since` (heard on the shared-state channel while
   * this upgrade was being admitted): it is refused before its target is dialled.
   */
  revokedSince(fingerprint: string, since: number): boolean
  /** Logs in to the target for the client (a route's `login`), between the dial and the 101. */
  readonly login: LoginRunner
  /**
   * Takes over a connected pair; the tunnel must call `admission.release()` when it ends. `login`: the
   * client's side of a login still to run on it.
   */
  startTunnel(
    id: number,
    ws: RelaySocket,
    wsSocket: Duplex,
    tcp: Socket,
    client: string,
    admission: Admission,
    login?: LoginSession,
  ): void
}

/** Short, client-safe reasons (internal addresses stay in the log). */
const CLIENT_REASONS: Record<string, string> = {
  ERR_TARGET_REFUSED: 'target refused the connection',
  ERR_TARGET_UNREACHABLE: 'target unreachable',
  ERR_TARGET_TIMEOUT: 'target connect timed out',
  ERR_TARGET_TLS: 'target TLS failed',
  ERR_TARGET_LOGIN: 'target login failed',
  ERR_LOGIN_TIMEOUT: 'target login timed out',
  ERR_TOO_MANY_CONNECTIONS: 'too many connections',
  ERR_SHUTTING_DOWN: 'server shutting down',
  ERR_TOKEN_INVALID: 'unauthorized',
  ERR_ORIGIN_DENIED: 'forbidden',
  ERR_TARGET_DENIED: 'forbidden',
  ERR_NO_TARGET: 'no target: name one with ?address=host:port',
  ERR_RATE_LIMITED: 'too many attempts',
  ERR_TOKEN_LIMIT: 'too many connections for this token',
  ERR_RESOLVER_UNAVAILABLE: 'service unavailable',
}

/** Bytes a client may send before the 101 (it should send none) before it is dropped. */
const MAX_EARLY_BYTES = 64 * 1024

const WS_KEY = /^[+/0-9A-Za-z]{22}==$/

export function createUpgradeListener(ctx: UpgradeContext) {
  const { logger } = ctx

  return function httpOnUpgrade(req: IncomingMessage, socket: Duplex, firstBytes: Buffer): void {
    const { config, access, wss, targetTls, streamOptions } = ctx
    const fixedTarget = config.target
    let head = firstBytes
    socket.on('error', socketOnEarlyError)
    const id = ctx.nextId()
    const client = ctx.clientOf(req)
    // Declared before any refusal below can use them.
    let admission: Admission | undefined
    let loginSession: LoginSession | undefined
    let refusalFields: Record<string, unknown> = {}
    let targetText = fixedTarget === undefined ? undefined : describeTarget(fixedTarget)

    const invalid = handshakeProblem(req, config.compress)
    if (invalid !== undefined) {
      logger.info('bad upgrade request', { conn: id, client, problem: invalid.message })
      // RFC 6455 4.4: an unsupported version is answered 426 with the versions we speak.
      const extra = invalid.status === 426 ? ['Sec-WebSocket-Version: 13'] : []
      writeHttpStatus(socket, invalid.status, invalid.message, extra)
      return
    }
    if (ctx.isDraining()) {
      refuse(tunnelError('ERR_SHUTTING_DOWN', 'server is draining'))
      return
    }
    if (config.maxConnections > 0 && ctx.load() >= config.maxConnections) {
      refuse(
        tunnelError('ERR_TOO_MANY_CONNECTIONS', `${config.maxConnections} tunnels already open`),
      )
      return
    }

    // If the client gives up while we dial, stop dialling.
    // Keep reading while we dial, or a client that leaves would go unnoticed until the dial ends. A
    // client must not send before the 101, but whatever it does send is kept (bounded) for ws.
    const abort = new Cancel()
    socket.on('data', socketOnDataWhileDialing)
    // Removed when the dial ends (stopWatchingClient); running twice (an end, then the close) is harmless.
    socket.on('end', socketOnCloseWhileDialing)
    socket.on('close', socketOnCloseWhileDialing)
    ctx.dialStarted()
    let dialStartedAt = performance.now()
    let dialEnded = false
    /** Whether the target was dialled (a refusal before that is no failed dial). */
    let dialled = false
    admit().then(admitOnDone, dialOnFailure).catch(upgradeOnInternalError)

    function admit(): Promise<Admission | Refusal> {
      if (access === undefined) return Promise.resolve(openAdmission(fixedTarget, req))
      return access.admit(req, ctx.clientIpOf(req))
    }

    function admitOnDone(answer: Admission | Refusal): void {
      if (!answer.ok) {
        refusalFields = {
          route: answer.label,
          token: answer.fingerprint,
          carrier: answer.carrier,
          path: redactUrl(req.url),
        }
        dialOnFailure(answer.error)
        return
      }
      admission = answer
      // A dial that fails (4502, 4503, 4504) is logged with the route and token that were admitted.
      refusalFields = { route: answer.label, token: answer.fingerprint }
      targetText = describeTarget(answer.target)
      if (abort.aborted) {
        dialOnFailure(abort.reason)
        return
      }
      // Revoked while the gate was deciding: refused like any revoked token, before anything is dialled.
      if (
        answer.fingerprint !== undefined &&
        answer.revocationCheckedAt !== undefined &&
        ctx.revokedSince(answer.fingerprint, answer.revocationCheckedAt)
      ) {
        refusalFields = { token: answer.fingerprint, carrier: answer.carrier }
        dialOnFailure(tunnelError('ERR_TOKEN_INVALID', 'missing or invalid token: revoked'))
        return
      }
      logger.debug('dialling', { conn: id, client, target: targetText, route: answer.label })
      dialStartedAt = performance.now()
      let tls: TargetTlsSettings | undefined
      try {
        tls = tlsSettingsFor(targetTls, answer.target, answer.options.tls)
      } catch (err) {
        dialOnFailure(err)
        return
      }
      dialled = true
      dial(answer.target, {
        timeoutMs: answer.options.connectTimeoutMs ?? config.connectTimeoutMs,
        signal: abort,
        addresses: answer.addresses,
        preamble: ctx.targetPreamble(req),
        tls,
        plainReads: answer.options.login !== undefined,
      })
        .then(loginOnDialed)
        .then(dialOnSuccess, dialOnFailure)
        .catch(upgradeOnInternalError)
    }

    /** With a route's `login`, the 101 means "connected and logged in": the login runs first. */
    function loginOnDialed(tcp: Socket): Socket | Promise<Socket> {
      const admitted = admission as Admission
      const spec = admitted.options.login
      if (spec === undefined) return tcp
      return ctx
        .login({
          conn: id,
          tcp,
          target: admitted.target,
          spec,
          timeoutMs: admitted.options.connectTimeoutMs ?? config.connectTimeoutMs,
          signal: abort,
        })
        .then((session) => {
          loginSession = session
          return tcp
        })
    }

    function socketOnCloseWhileDialing(): void {
      abort.cancel(new Error('client went away while dialling'))
      socket.destroy()
    }

    function socketOnDataWhileDialing(chunk: Buffer): void {
      head = Buffer.concat([head, chunk])
      if (head.length > MAX_EARLY_BYTES) socket.destroy()
    }

    function stopWatchingClient(): void {
      socket.off('data', socketOnDataWhileDialing)
      socket.off('end', socketOnCloseWhileDialing)
      socket.off('close', socketOnCloseWhileDialing)
      // No pause here: ws attaches its own 'data' listener synchronously in handleUpgrade (every caller
      // below hands over in the same tick), and an explicitly paused socket would never flow again.
    }

    function dialOnSuccess(tcp: Socket): void {
      dialEnded = true
      ctx.dialFinished(performance.now() - dialStartedAt, 'connected')
      stopWatchingClient()
      const admitted = admission as Admission
      if (socket.destroyed) {
        tcp.destroy()
        admitted.release()
        return
      }
      if (ctx.isDraining()) {
        tcp.destroy()
        admitted.release()
        refuse(tunnelError('ERR_SHUTTING_DOWN', 'server is draining'))
        return
      }
      // Nothing to negotiate (the usual case): the 101 is written here, and the streaming codec takes the
      // socket (accept-upgrade.ts).
      if (!needsWs(req, config.compress)) {
        const ws = acceptUpgrade(req, socket, head, streamOptions)
        if (ws === undefined) {
          tcp.destroy()
          admitted.release()
          logger.info('client left before the 101', { conn: id, client })
          return
        }
        socket.off('error', socketOnEarlyError)
        ctx.startTunnel(id, ws, socket, tcp, client, admitted, loginSession)
        return
      }
      // ws may still reject the handshake (a malformed subprotocol or extension header): then its
      // callback never runs and the socket closes, and the dialled target must not outlive it.
      socket.once('close', socketOnCloseBeforeUpgrade)
      wss.handleUpgrade(req, socket, head, function wssOnUpgraded(ws) {
        socket.off('close', socketOnCloseBeforeUpgrade)
        socket.off('error', socketOnEarlyError)
        ctx.startTunnel(id, relaySocketOf(ws), socket, tcp, client, admitted, loginSession)
      })
      function socketOnCloseBeforeUpgrade(): void {
        tcp.destroy()
        admitted.release()
        logger.info('handshake rejected', { conn: id, client })
      }
    }

    function dialOnFailure(err: unknown): void {
      dialEnded = true
      const result = !dialled ? undefined : abort.aborted ? 'aborted' : 'failed'
      ctx.dialFinished(performance.now() - dialStartedAt, result)
      stopWatchingClient()
      admission?.release()
      if (abort.aborted) {
        logger.info('client left before the target answered', {
          conn: id,
          client,
          target: targetText,
        })
        return
      }
      refuse(
        err instanceof TunnelError ? err : tunnelError('ERR_TARGET_UNREACHABLE', String(err), err),
      )
    }

    /**
     * A throw in one of the handlers above (a bug, such as the PROXY header of issue 13's finding 1): this
     * connection is dropped and logged, its dial slot given back; the process and every other tunnel go on.
     */
    function upgradeOnInternalError(err: unknown): void {
      logger.error('connection dropped: internal error', {
        conn: id,
        client,
        target: targetText,
        error: err instanceof Error ? err.message : String(err),
      })
      if (!dialEnded) {
        dialEnded = true
        ctx.dialFinished(performance.now() - dialStartedAt, dialled ? 'failed' : undefined)
        stopWatchingClient()
        admission?.release()
      }
      socket.destroy()
    }

    function refuse(err: TunnelError): void {
      const reason = tlsRefusalReason(err) ?? CLIENT_REASONS[err.code] ?? 'refused'
      const http = config.refuseWith === 'http'
      logger.warn('tunnel refused', {
        conn: id,
        client,
        target: targetText,
        ...refusalFields,
        [http ? 'status' : 'code']: http ? err.status : err.closeCode,
        reason: err.message,
      })
      ctx.refused(err.closeCode, refusalReason(err.code))
      if (refuseChannel.hasSubscribers) {
        refuseChannel.publish({ id, client, code: err.closeCode, status: err.status, reason })
      }
      if (socket.destroyed) return
      if (http) {
        // RFC 9110 11.6.1: a 401 names the scheme that would work.
        const extra = err.status === 401 ? ['WWW-Authenticate: Bearer'] : []
        writeHttpStatus(socket, err.status, reason, extra)
        return
      }
      wss.handleUpgrade(req, socket, head, function wssOnRefusedUpgrade(upgraded) {
        socket.off('error', socketOnEarlyError)
        const ws = relaySocketOf(upgraded)
        ws.on('error', wsOnRefusedError)
        ws.close(err.closeCode, reason)
        // A refused client that never answers our close frame must not hold its connection for ws's
        // 30 s close timeout: the refusal is part of the handshake, and gets the handshake's time.
        const linger = setTimeout(() => ws.terminate(), config.handshakeTimeoutMs)
        ws.once('close', () => clearTimeout(linger))
      })
    }
  }
}

function socketOnEarlyError(this: Duplex): void {
  this.destroy()
}

function wsOnRefusedError(): void {
  // The client may vanish before reading our close frame; nothing to do but let ws clean up.
}

/** Why a request cannot be a WebSocket handshake, or undefined when it can (checked before dialling). */
function handshakeProblem(
  req: IncomingMessage,
  compress: boolean,
): { status: number; message: string } | undefined {
  if (req.method !== 'GET') return { status: 400, message: 'WebSocket upgrades must use GET' }
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
    return { status: 400, message: 'Upgrade header must be "websocket"' }
  const key = req.headers['sec-websocket-key']
  if (key === undefined || !WS_KEY.test(key))
    return { status: 400, message: 'missing or invalid Sec-WebSocket-Key' }
  if (req.headers['sec-websocket-version'] !== '13')
    return { status: 426, message: 'unsupported Sec-WebSocket-Version (13 is required)' }
  const protocols = subprotocolProblem(req.headers['sec-websocket-protocol'])
  if (protocols !== undefined) return { status: 400, message: protocols }
  // ws reads the extension offer only when permessage-deflate is on.
  const extensions = compress
    ? extensionsProblem(req.headers['sec-websocket-extensions'])
    : undefined
  if (extensions !== undefined) return { status: 400, message: extensions }
  return undefined
}

/**
 * The admission of a daemon without an access gate: its one fixed target, no per-route options. A request
 * that names another target (`?address=`) is refused, never silently sent to the fixed one.
 */
function openAdmission(target: Target | undefined, req: IncomingMessage): Admission | Refusal {
  if (target === undefined) throw new Error('no TARGET and no access gate')
  if (clientNamedTarget(req.url) !== undefined) {
    return {
      ok: false,
      error: tunnelError('ERR_TARGET_DENIED', 'client-named targets are off (clientTargets)'),
      fingerprint: undefined,
      carrier: undefined,
    }
  }
  return {
    ok: true,
    target,
    addresses: undefined,
    options: {},
    label: undefined,
    fingerprint: undefined,
    carrier: undefined,
    revocationCheckedAt: undefined,
    release: () => undefined,
  }
}
