/**
 * @module gateway/shim-bundle
 * `GET /gangway.js`: the minified browser library (built by `npm run build` from web/gangway.ts), so a page
 * can `import { connect } from '/gangway.js'` from the daemon it talks to. Read and compressed once (gzip,
 * brotli), served from memory with a strong ETag, and also at a versioned URL `/gangway.<hash>.js` that
 * never changes (cached for a year, `immutable`). The stable URL names the versioned one in
 * `Content-Location` and is revalidated (a 304 when unchanged).
 * Knows nothing of the shim's contents.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

export const SHIM_PATH = '/gangway.js'

const VERSIONED = /^\/gangway\.([0-9a-f]{16})\.js$/

/** dist/gangway.min.js, found from dist/ (built) and from src/ (tests run the sources). */
const BUNDLE_URL = new URL('../../dist/gangway.min.js', import.meta.url)

interface Bundle {
  readonly hash: string
  readonly identity: Buffer
  readonly gzip: Buffer
  readonly br: Buffer
}

let bundle: Bundle | undefined

/** True for `/gangway.js` and for anything shaped like a versioned copy of it (a wrong hash is a 404). */
export function isShimPath(path: string): boolean {
  return path === SHIM_PATH || VERSIONED.test(path)
}

function load(): Bundle {
  if (bundle !== undefined) return bundle
  const identity = readFileSync(BUNDLE_URL)
  bundle = {
    hash: createHash('sha256').update(identity).digest('hex').slice(0, 16),
    identity,
    gzip: gzipSync(identity, { level: 9 }),
    br: brotliCompressSync(identity, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: 11,
        [constants.BROTLI_PARAM_SIZE_HINT]: identity.length,
      },
    }),
  }
  return bundle
}

/** The encoding to answer with: brotli, then gzip, when `Accept-Encoding` allows (q > 0), else none. */
function chooseEncoding(header: string | undefined): 'br' | 'gzip' | undefined {
  const accepted = new Set<string>()
  for (const part of (header ?? '').toLowerCase().split(',')) {
    const [name = '', ...params] = part.trim().split(';')
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='))
    if (q === undefined || Number(q.slice(2)) > 0) accepted.add(name.trim())
  }
  if (accepted.has('br')) return 'br'
  if (accepted.has('gzip') || accepted.has('*')) return 'gzip'
  return undefined
}

export function serveShimBundle(req: IncomingMessage, res: ServerResponse, path: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 })
    res.end()
    return
  }
  let current: Bundle
  try {
    current = load()
  } catch {
    notFound(req, res, 'gangway.js is not built: run npm run build\n')
    return
  }
  const versioned = VERSIONED.exec(path)
  if (versioned !== null && versioned[1] !== current.hash) {
    notFound(
      req,
      res,
      `no such version of gangway.js: this daemon serves /gangway.${current.hash}.js\n`,
    )
    return
  }
  const encoding = chooseEncoding(req.headers['accept-encoding'])
  const body = encoding === undefined ? current.identity : current[encoding]
  const etag = `"${current.hash}${encoding === undefined ? '' : `-${encoding}`}"`
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Cache-Control': versioned === null ? 'no-cache' : 'public, max-age=31536000, immutable',
    ETag: etag,
    Vary: 'Accept-Encoding',
  }
  if (versioned === null) headers['Content-Location'] = `/gangway.${current.hash}.js`
  if (encoding !== undefined) headers['Content-Encoding'] = encoding
  const ifNoneMatch = req.headers['if-none-match']
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((t) => t.trim() === etag)) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  headers['Content-Length'] = body.length
  res.writeHead(200, headers)
  res.end(req.method === 'HEAD' ? undefined : body)
}

function notFound(req: IncomingMessage, res: ServerResponse, body: string): void {
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}
