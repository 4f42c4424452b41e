/**
 * @module admin
 * The admin listener (`--admin ADDR`, off unless given): Prometheus metrics at `/metrics`, liveness at
 * `/healthz` and readiness at `/readyz`, on an address of its own so that operators can keep it off the
 * public one. Serves nothing else and never touches tunnels.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { ListenAddress } from './config.js'
import { GangwayError } from './errors.js'
import type { TunnelMetrics } from './metrics.js'
import type { TunnelServer } from './server.js'
import { VERSION } from './version.js'

export interface AdminServer {
  listen(): Promise<void>
  address(): ListenAddress
  close(): Promise<void>
}

export function createAdminServer(
  listen: ListenAddress,
  tunnels: TunnelServer,
  metrics: TunnelMetrics,
): AdminServer {
  const startedAt = Date.now()
  const server = http.createServer(function adminOnRequest(req, res) {
    void route(req, res)
  })
  server.keepAliveTimeout = 5_000

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', {
        Allow: 'GET, HEAD',
      })
      return
    }
    const path = (req.url ?? '/').split('?', 1)[0]
    if (path === '/metrics') {
      try {
        send(req, res, 200, metrics.registry.contentType, await metrics.registry.metrics())
      } catch {
        send(req, res, 500, 'text/plain; charset=utf-8', 'metrics collection failed\n')
      }
      return
    }
    if (path === '/healthz') {
      const body = {
        status: 'ok',
        version: VERSION,
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      }
      send(req, res, 200, 'application/json', JSON.stringify(body) + '\n')
      return
    }
    if (path === '/readyz') {
      // Ready = accepting tunnels. A draining node answers 503 so the load balancer moves new clients away
      // while its live tunnels finish.
      const stats = tunnels.stats()
      const ready = !stats.draining
      const body = { status: ready ? 'ready' : 'draining', tunnels: stats.tunnels }
      send(req, res, ready ? 200 : 503, 'application/json', JSON.stringify(body) + '\n')
      return
    }
    send(
      req,
      res,
      404,
      'text/plain; charset=utf-8',
      'not found: try /metrics, /healthz or /readyz\n',
    )
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

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
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
