/**
 * @module ops/admin
 * The admin listener (`--admin ADDR`, off unless given): Prometheus metrics at `/metrics`, liveness at
 * `/healthz` and readiness at `/readyz`, on an address of its own so that operators can keep it off the
 * public one; and, when an admin token is configured, the admin API (`/api/tunnels`, closing one tunnel)
 * and the live status page (`/status`) that uses it.
 * Knows tunnels only through the views the gateway hands it (`AdminView`); never dials.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { createHash, timingSafeEqual } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fingerprint, silentLogger, type Logger } from '../log.js'
import type { ListenAddress } from '../config/options.js'
import { GangwayError } from '../errors.js'
import type { RouteTotals, TunnelInfo, TunnelStats } from '../gateway/server.js'
import { VERSION } from '../version.js'
import type { SharedState } from '../state/redis-state.js'
import { answerRevokeRequest, answerUndoRequest } from '../state/revoke.js'
import { exposition } from './metrics.js'

export interface AdminServer {
  listen(): Promise<void>
  address(): ListenAddress
  close(): Promise<void>
}

type MaybePromise<T> = T | Promise<T>

/** A tunnel server's stats; a cluster primary adds the workers whose shared state does not answer. */
export type AdminStats = TunnelStats & { sharedStateDown?: number[] }

/** What the admin listener reads: one tunnel server, or a cluster of workers (see cluster.ts). */
export interface AdminView {
  stats(): MaybePromise<AdminStats>
  list(): MaybePromise<TunnelInfo[]>
  totals(): MaybePromise<Record<string, RouteTotals>>
  /** Refusals since start, by reason (`origin_denied`, `token_invalid`, …). */
  refusals(): MaybePromise<Record<string, number>>
  closeTunnel(id: number): MaybePromise<boolean>
}

/** A prom-client registry, or an aggregator over workers. */
export interface MetricsSource {
  registry: { contentType: string; metrics(): Promise<string> }
}

export interface AdminOptions {
  /** Enables the admin API and status page; requests must carry `Authorization: Bearer <token>`. */
  token?: string
  logger?: Logger
  /**
   * Shared state (`--state-redis`): `/healthz` and `/readyz` report whether it answers (without gating
   * readiness on it), `POST`/`DELETE /api/revoke` write to it.
   */
  state?: Pick<SharedState, 'healthy' | 'revoke' | 'unrevoke'> | undefined
  /** This node's name (`--node-id`), shown by `/api/tunnels` and the status page. */
  node?: string
}

/** Largest admin API request body (a revocation is a few hundred bytes). */
const MAX_BODY_BYTES = 16 * 1024

/** The status page's files by path, served as they are (read by an admin server with a token). */
const STATUS_FILES: Record<string, { file: string; type: string }> = {
  '/status': { file: 'status.html', type: 'text/html; charset=utf-8' },
  '/status.js': { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  '/status-charts.js': { file: 'status-charts.js', type: 'text/javascript; charset=utf-8' },
}

function readStatusPage(): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>()
  for (const [path, { file, type }] of Object.entries(STATUS_FILES)) {
    const body = readFileSync(new URL(`../../web/admin/${file}`, import.meta.url))
    files.set(path, { body, type })
  }
  return files
}

const TUNNEL_CLOSE_PATH = /^\/api\/tunnels\/(\d+)\/close$/

export function createAdminServer(
  listen: ListenAddress,
  tunnels: AdminView,
  metrics: MetricsSource,
  options: AdminOptions = {},
): AdminServer {
  const logger = options.logger ?? silentLogger
  const tokenDigest = options.token === undefined ? undefined : sha256(options.token)
  // Audit lines name who acted by the admin token's fingerprint (several operators may hold different
  // nodes' tokens) and the client address, never the token.
  const adminPrint = options.token === undefined ? undefined : fingerprint(options.token)
  const statusPage = options.token === undefined ? undefined : readStatusPage()
  const startedAt = Date.now()
  const server = http.createServer(function adminOnRequest(req, res) {
    route(req, res).catch(function adminOnRouteError(err: unknown) {
      // A client that aborts its body (readJson), a store that fails mid-answer: answer or drop this one
      // request; never let it reach the process.
      logger.warn('admin request failed', {
        client: req.socket.remoteAddress,
        path: (req.url ?? '/').split('?', 1)[0],
        error: err instanceof Error ? err.message : String(err),
      })
      if (!res.headersSent && !req.socket.destroyed) {
        send(req, res, 500, 'text/plain; charset=utf-8', 'internal error\n')
      } else res.destroy()
    })
  })
  server.keepAliveTimeout = 5_000

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/'
    if (path.startsWith('/api/')) {
      await api(req, res, path)
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', {
        Allow: 'GET, HEAD',
      })
      return
    }
    if (Object.hasOwn(STATUS_FILES, path)) {
      const file = statusPage?.get(path)
      if (file === undefined) {
        send(
          req,
          res,
          404,
          'text/plain; charset=utf-8',
          'the status page needs an admin token (--admin-token-file)\n',
        )
        return
      }
      send(req, res, 200, file.type, file.body, {
        'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'",
        'X-Content-Type-Options': 'nosniff',
        'X-Frame-Options': 'DENY',
      })
      return
    }
    if (path === '/metrics') {
      try {
        const text = exposition(await metrics.registry.metrics())
        send(req, res, 200, metrics.registry.contentType, text)
      } catch (err) {
        logger.error('metrics collection failed', {
          error: err instanceof Error ? err.message : String(err),
        })
        send(req, res, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n')
      }
      return
    }
    if (path === '/healthz') {
      // Alive whatever Redis does (a restart would not bring it back); a degraded shared state is named.
      const shared = options.state === undefined ? undefined : sharedStateOf(await tunnels.stats())
      const body = {
        status: shared?.sharedState === 'unreachable' ? 'degraded' : 'ok',
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        ...shared,
      }
      send(req, res, 200, 'application/json', JSON.stringify(body) + '\n')
      return
    }
    if (path === '/readyz') {
      // Ready = this node can take new tunnels: 503 only while it drains, so that the load balancer moves
      // new clients away while its live tunnels finish. Shared state is reported, never a reason: Redis is
      // shared, so a blip would pull every node at once, including for tunnels that need no token, and a
      // node without it still refuses what it cannot check (4503) by itself.
      const stats = await tunnels.stats()
      const shared = options.state === undefined ? undefined : sharedStateOf(stats)
      const body = {
        status: stats.draining ? 'draining' : 'ready',
        tunnels: stats.tunnels,
        ...shared,
      }
      send(req, res, stats.draining ? 503 : 200, 'application/json', JSON.stringify(body) + '\n')
      return
    }
    send(
      req,
      res,
      404,
      'text/plain; charset=utf-8',
      'not found: try /metrics, /healthz, /readyz or /status\n',
    )
  }

  /** The admin API: every route needs the admin token, compared in constant time. */
  async function api(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const json = 'application/json'
    if (tokenDigest === undefined) {
      sendJson(req, res, 404, { error: 'the admin API needs an admin token (--admin-token-file)' })
      return
    }
    if (!isAuthorized(req.headers.authorization, tokenDigest)) {
      logger.warn('admin API: missing or wrong admin token', {
        client: requestClient(req),
        path,
      })
      send(req, res, 401, json, JSON.stringify({ error: 'admin token required' }) + '\n', {
        'WWW-Authenticate': 'Bearer realm="gangway-admin"',
      })
      return
    }
    if (path === '/api/tunnels' && (req.method === 'GET' || req.method === 'HEAD')) {
      const [stats, list, totals, refusals] = await Promise.all([
        tunnels.stats(),
        tunnels.list(),
        tunnels.totals(),
        tunnels.refusals(),
      ])
      sendJson(req, res, 200, {
        now: Date.now(),
        node: options.node,
        version: VERSION,
        draining: stats.draining,
        // The status page offers "Revoke token" only when POST /api/revoke can work.
        sharedState: options.state !== undefined,
        // In id order (with --workers, the workers' lists are merged): rows never swap places.
        tunnels: [...list].sort((a, b) => a.id - b.id),
        routes: totals,
        refusals,
      })
      return
    }
    if (path === '/api/revoke' && (req.method === 'POST' || req.method === 'DELETE')) {
      if (options.state === undefined) {
        sendJson(req, res, 404, { error: 'revocation needs shared state (--state-redis)' })
        return
      }
      const body = await readJson(req)
      if (req.method === 'DELETE') {
        const answer = await answerUndoRequest(body, options.state)
        if (answer.status === 200)
          logger.info('token revocation undone by admin API', { ...answer.body, ...audit(req) })
        else
          logger.warn('admin API: undoing a revocation failed', {
            status: answer.status,
            ...audit(req),
          })
        sendJson(req, res, answer.status, answer.body)
        return
      }
      const answer = await answerRevokeRequest(body, options.state)
      if (answer.status === 200)
        logger.info('token revoked by admin API', { ...answer.body, ...audit(req) })
      else logger.warn('admin API: revocation failed', { status: answer.status, ...audit(req) })
      sendJson(req, res, answer.status, answer.body)
      return
    }
    const close = TUNNEL_CLOSE_PATH.exec(path)
    if (close !== null && req.method === 'POST') {
      const id = Number(close[1])
      const closing = await tunnels.closeTunnel(id)
      logger.info(closing ? 'tunnel closed by admin API' : 'admin API: no such tunnel to close', {
        conn: id,
        ...audit(req),
      })
      if (closing) sendJson(req, res, 202, { closing: id })
      else sendJson(req, res, 404, { error: 'no such tunnel' })
      return
    }
    sendJson(req, res, 404, { error: 'not found' })
  }

  /** Who made an admin API request, for its audit line: the admin token's fingerprint and the client. */
  function audit(req: IncomingMessage): { admin: string | undefined; client: string } {
    return { admin: adminPrint, client: requestClient(req) }
  }

  /** `sharedState` (`ok` or `unreachable`), and with --workers the indexes of workers that lost theirs. */
  function sharedStateOf(stats: AdminStats): { sharedState: string; workers?: number[] } {
    const workersDown = stats.sharedStateDown ?? []
    const down = options.state?.healthy() === false || workersDown.length > 0
    return {
      sharedState: down ? 'unreachable' : 'ok',
      ...(workersDown.length > 0 ? { workers: workersDown } : {}),
    }
  }

  return {
    async listen() {
      const listening = once(server, 'listening')
      if (listen.kind === 'unix') server.listen(listen.path)
      else server.listen({ host: listen.host ?? '127.0.0.1', port: listen.port })
      try {
        await listening
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error'
        const where =
          listen.kind === 'unix'
            ? `unix:${listen.path}`
            : `${listen.host ?? '127.0.0.1'}:${listen.port}`
        throw new GangwayError('ERR_LISTEN', `cannot listen on ${where} (--admin): ${code}`, {
          cause: err,
        })
      }
    },
    address() {
      const bound = server.address()
      if (bound === null) return listen
      if (typeof bound === 'string') return { kind: 'unix', path: bound }
      return { kind: 'tcp', host: bound.address, port: bound.port }
    },
    async close() {
      if (!server.listening) return
      const closed = once(server, 'close')
      server.close()
      server.closeAllConnections()
      await closed
    },
  }
}

/** The admin client as `ip:port` (`unix` on a unix socket): the admin listener trusts no forwarding header. */
function requestClient(req: IncomingMessage): string {
  const { remoteAddress, remotePort } = req.socket
  if (remoteAddress === undefined) return 'unix'
  const host = remoteAddress.includes(':') ? `[${remoteAddress}]` : remoteAddress
  return remotePort === undefined ? host : `${host}:${remotePort}`
}

/**
 * The request body parsed as JSON; undefined when it is not JSON or too large.
 * @throws when the client aborts the body (`aborted`); the caller's catch answers for it.
 */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size <= MAX_BODY_BYTES) chunks.push(chunk) // read on to the end, so the answer can be sent
  }
  if (size > MAX_BODY_BYTES) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    return undefined
  }
}

function sendJson(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): void {
  send(req, res, status, 'application/json', JSON.stringify(body) + '\n')
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

/** Compares digests, so the time taken says nothing about the token or its length. */
function isAuthorized(header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer (.+)$/i.exec(header ?? '')
  if (match === null) return false
  return timingSafeEqual(sha256(match[1]!), expected)
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}
