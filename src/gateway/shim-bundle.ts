/**
 * @module gateway/shim-bundle
 * `GET /gangway.js`: the minified browser library (built by `npm run build` from web/gangway.ts), so a page
 * can `import { connect } from '/gangway.js'` from the daemon it talks to. Read once, served from memory.
 * Knows nothing of the shim's contents.
 */
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'

export const SHIM_PATH = '/gangway.js'

/** dist/gangway.min.js, found from dist/ (built) and from src/ (tests run the sources). */
const BUNDLE_URL = new URL('../../dist/gangway.min.js', import.meta.url)

let bundle: Buffer | undefined

export function serveShimBundle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 })
    res.end()
    return
  }
  try {
    bundle ??= readFileSync(BUNDLE_URL)
  } catch {
    const body = 'gangway.js is not built: run npm run build\n'
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end(req.method === 'HEAD' ? undefined : body)
    return
  }
  res.writeHead(200, {
    'Content-Type': 'text/javascript; charset=utf-8',
    'Content-Length': bundle.length,
    'Cache-Control': 'no-cache',
  })
  res.end(req.method === 'HEAD' ? undefined : bundle)
}
