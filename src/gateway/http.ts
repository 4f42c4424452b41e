/**
 * @module gateway/http
 * Plain HTTP requests on the tunnel listener: `GET /healthz`, static files from `--web`, and a clear
 * answer to anything else. Also turns malformed or slow requests (Node's 'clientError') into proper
 * status lines instead of silent drops.
 * Knows nothing of tunnels or tokens.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { createStaticHandler } from './static.js'
import { isShimPath, serveShimBundle } from './shim-bundle.js'
import type { Logger } from '../log.js'

export interface HttpContext {
  readonly webRoot: string | undefined
  readonly logger: Logger
  /** Body of `GET /healthz`. */
  health(): Record<string, unknown>
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

export function createRequestListener(ctx: HttpContext): RequestListener {
  const serveStatic = ctx.webRoot === undefined ? undefined : createStaticHandler(ctx.webRoot)
  return function httpOnRequest(req, res): void {
    const path = requestPath(req.url)
    if (path === '/healthz') {
      sendHealth(req, res, ctx.health())
      return
    }
    if (isShimPath(path)) {
      serveShimBundle(req, res, path)
      return
    }
    if (serveStatic !== undefined) {
      serveStatic(req, res)
      return
    }
    const body = 'This is a Gangway WebSocket endpoint: connect with a WebSocket client.\n'
    res.writeHead(426, {
      Upgrade: 'websocket',
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}

/** The path of a request target, in origin form (`/x?y`) or absolute form (`http://host/x?y`). */
function requestPath(url = '/'): string {
  const path = url.split('?', 1)[0] ?? '/'
  if (path.startsWith('/')) return path
  const scheme = /^https?:\/\/[^/]*/i.exec(path)
  return scheme ? path.slice(scheme[0].length) || '/' : path
}

function sendHealth(
  req: IncomingMessage,
  res: ServerResponse,
  status: Record<string, unknown>,
): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 })
    res.end()
    return
  }
  const body = JSON.stringify(status) + '\n'
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

const CLIENT_ERROR_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
  ERR_HTTP_HEADERS_TIMEOUT: 408,
}

/** Answers a request Node could not parse (or that came too slowly) and drops the connection. */
export function createClientErrorListener(logger: Logger) {
  return function httpOnClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? 400
    logger.debug('bad http request', { status, error: err.code ?? err.message })
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    writeHttpStatus(socket, status, reasonFor(status))
  }
}

function reasonFor(status: number): string {
  if (status === 431) return 'request header fields too large'
  if (status === 408) return 'request timed out'
  return 'malformed HTTP request'
}

/**
 * Writes a complete HTTP/1.1 response on a raw socket (before or instead of an upgrade) and closes it.
 * `extraHeaders` are trusted lines such as `Sec-WebSocket-Version: 13`.
 */
export function writeHttpStatus(
  socket: Duplex,
  status: number,
  body: string,
  extraHeaders: string[] = [],
): void {
  const text = body.endsWith('\n') ? body : body + '\n'
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(text)}`,
    ...extraHeaders,
  ]
  socket.once('finish', () => socket.destroy())
  socket.end(head.join('\r\n') + '\r\n\r\n' + text)
}
