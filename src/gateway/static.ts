/**
 * @module gateway/static
 * Serves files under one root directory for plain HTTP requests (GET/HEAD). It owns the mapping from a
 * request target to a file, and guarantees that no request target, however encoded, reads outside the
 * root: segments are decoded one at a time, `..` and separators inside a segment are refused, and the
 * real path (symlinks resolved) is checked against the real root before anything is opened.
 * It must not list directories, leak error details, or crash on a bad request.
 */
import { createReadStream, type ReadStream, type Stats } from 'node:fs'
import { open, realpath, stat } from 'node:fs/promises'
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import { extname, join, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'

export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => void

const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
}

/** Headers every response carries, errors included. */
const COMMON_HEADERS = { 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-cache' }

/** Error codes that mean "there is no such file" from the client's point of view. */
const NOT_FOUND_CODES = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG'])

/** Thrown inside the handler to answer with a status; anything else becomes a bare 500. */
class HttpStatus extends Error {
  constructor(readonly status: number) {
    super(String(status))
  }
}

/** The decoded, validated path of a request: its segments and whether it ended with a slash. */
interface RequestPath {
  segments: string[]
  trailingSlash: boolean
}

/**
 * Builds the handler for plain HTTP requests under `root` (an absolute directory).
 * @example http.createServer(createStaticHandler('/srv/www')).listen(8080)
 */
export function createStaticHandler(root: string): StaticHandler {
  return function serveStatic(req, res) {
    serve(root, req, res).catch(function serveOnError(err: unknown) {
      respondWithError(res, err)
    })
  }
}

async function serve(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'Method Not Allowed', { Allow: 'GET, HEAD' })
    return
  }
  const requestPath = parseRequestPath(req.url ?? '')
  const realRoot = await realpath(root)
  let file = await resolveInside(realRoot, join(realRoot, ...requestPath.segments))
  let stats = await stat(file)
  if (stats.isDirectory()) {
    if (!requestPath.trailingSlash) {
      // Rebuilt from the checked segments, each re-encoded and never empty: the Location cannot start
      // with `//` (another host), carry CR/LF, or point somewhere the request did not.
      const location = '/' + requestPath.segments.map(encodeURIComponent).join('/') + '/'
      sendText(res, 301, 'Moved Permanently', { Location: location })
      return
    }
    file = await resolveInside(realRoot, join(file, 'index.html'))
    stats = await stat(file)
  } else if (requestPath.trailingSlash) {
    throw new HttpStatus(404) // `/file.txt/` names a directory that is not there
  }
  if (!stats.isFile()) throw new HttpStatus(404)
  if (req.method === 'HEAD') {
    res.writeHead(200, fileHeaders(file, stats))
    res.end()
    return
  }
  await sendFile(file, res)
}

/**
 * Turns a request target into path segments. Accepts origin-form (`/a/b?q`) and absolute-form
 * (`http://host/a/b`); each segment is percent-decoded on its own, so an encoded `/` or `\` cannot
 * create a new segment, and a decoded `..` is refused rather than resolved.
 * @throws HttpStatus(400) on malformed encoding, NUL, separators inside a segment or `..`
 */
export function parseRequestPath(target: string): RequestPath {
  // Absolute-form is legal HTTP/1.1 (RFC 9112 3.2.2); keep only its path, without letting a URL parser
  // normalise `..` away for us: the same checks must apply to every form.
  const withoutOrigin = target.replace(/^https?:\/\/[^/?#]*/i, '')
  const path = withoutOrigin === '' ? '/' : (withoutOrigin.split(/[?#]/, 1)[0] ?? '')
  if (!path.startsWith('/')) throw new HttpStatus(400)
  const segments: string[] = []
  for (const raw of path.split('/')) {
    let segment: string
    try {
      segment = decodeURIComponent(raw)
    } catch {
      throw new HttpStatus(400)
    }
    if (/[/\\\0]/.test(segment) || segment === '..') throw new HttpStatus(400)
    if (segment === '' || segment === '.') continue
    // Hidden files (.git, .env, …) are never served: a web root is often a working directory too.
    if (segment.startsWith('.')) throw new HttpStatus(404)
    segments.push(segment)
  }
  return { segments, trailingSlash: path.endsWith('/') }
}

/** Resolves symlinks in `candidate` and refuses (404) a real path outside `realRoot`. */
async function resolveInside(realRoot: string, candidate: string): Promise<string> {
  if (!isInside(realRoot, candidate)) throw new HttpStatus(404)
  const real = await realpath(candidate)
  if (!isInside(realRoot, real)) throw new HttpStatus(404)
  return real
}

function isInside(realRoot: string, path: string): boolean {
  return path === realRoot || path.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)
}

function fileHeaders(file: string, stats: Stats): Record<string, string | number> {
  return {
    ...COMMON_HEADERS,
    'Content-Type': MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': stats.size,
  }
}

/**
 * Streams a regular file. The length comes from the open descriptor, so it matches what is read; the
 * descriptor is closed when the stream ends, fails, or the client goes away (pipeline destroys both).
 */
async function sendFile(file: string, res: ServerResponse): Promise<void> {
  const handle = await open(file, 'r')
  let stats: Stats
  try {
    stats = await handle.stat()
  } catch (err) {
    await handle.close()
    throw err
  }
  if (!stats.isFile()) {
    await handle.close()
    throw new HttpStatus(404)
  }
  const stream: ReadStream = createReadStream(file, { fd: handle }) // closes the fd when done
  res.writeHead(200, fileHeaders(file, stats))
  try {
    await pipeline(stream, res)
  } catch (err) {
    // A client that hangs up mid-body is normal; pipeline has already destroyed the stream (closing
    // the fd) and the response. Anything else is rethrown, and reported as a 500 if nothing was sent.
    if (!res.headersSent || !isPrematureClose(err)) throw err
  }
}

function isPrematureClose(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ERR_STREAM_PREMATURE_CLOSE'
}

/** Maps a failure to a short plain-text response; the error itself is never sent to the client. */
function respondWithError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy() // the body was under way: truncating is the only honest signal left
    return
  }
  const status = statusOf(err)
  sendText(res, status, STATUS_CODES[status] ?? 'Error')
}

function statusOf(err: unknown): number {
  if (err instanceof HttpStatus) return err.status
  const code = (err as NodeJS.ErrnoException | null)?.code
  if (code !== undefined && NOT_FOUND_CODES.has(code)) return 404
  if (code === 'EACCES' || code === 'EPERM') return 403
  return 500
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
): void {
  const body = `${status} ${text}\n`
  res.writeHead(status, {
    ...COMMON_HEADERS,
    ...extra,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
