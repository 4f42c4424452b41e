import { afterEach, describe, expect, it } from 'vitest'
import { request } from 'node:http'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

describe('GET /gangway.js', () => {
  it('serves the minified browser core as JavaScript, with or without --web', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const httpUrl = server.url().replace(/^ws/, 'http')
    const res = await fetch(new URL('/gangway.js', httpUrl))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    const body = await res.text()
    expect(body).toContain('gangway.v1')
    expect(body).toMatch(/export\s*\{/)
    const head = await fetch(new URL('/gangway.js', httpUrl), { method: 'POST' })
    expect(head.status).toBe(405)
  })
})

/** A raw GET (no automatic decompression), as a browser sends it. */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }),
      )
    })
      .on('error', reject)
      .end()
  })
}

describe('GET /gangway.js caching and compression', () => {
  it('serves brotli or gzip as accepted, with a strong ETag, a 304 on revalidation and a versioned immutable URL', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const base = server.url().replace(/^ws/, 'http')
    const plain = await get(new URL('/gangway.js', base).href)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.headers['cache-control']).toBe('no-cache')
    expect(plain.headers.vary).toBe('Accept-Encoding')
    const versioned = plain.headers['content-location'] as string
    expect(versioned).toMatch(/^\/gangway\.[0-9a-f]{16}\.js$/)

    const br = await get(new URL('/gangway.js', base).href, {
      'accept-encoding': 'gzip, deflate, br',
    })
    expect(br.headers['content-encoding']).toBe('br')
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true)
    expect(br.body.length).toBeLessThan(plain.body.length / 2)
    const gz = await get(new URL('/gangway.js', base).href, { 'accept-encoding': 'gzip, br;q=0' })
    expect(gz.headers['content-encoding']).toBe('gzip')
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true)

    const etag = br.headers.etag as string
    expect(etag).not.toBe(plain.headers.etag) // one ETag per representation
    const again = await get(new URL('/gangway.js', base).href, {
      'accept-encoding': 'br',
      'if-none-match': etag,
    })
    expect([again.status, again.body.length]).toEqual([304, 0])

    const pinned = await get(new URL(versioned, base).href, { 'accept-encoding': 'gzip' })
    expect(pinned.status).toBe(200)
    expect(pinned.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(gunzipSync(pinned.body).equals(plain.body)).toBe(true)
    const stale = await get(new URL('/gangway.0123456789abcdef.js', base).href)
    expect(stale.status).toBe(404)
    expect(stale.body.toString()).toContain(versioned)
  })
})
