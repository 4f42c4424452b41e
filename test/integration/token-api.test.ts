import http from 'node:http'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { httpTokenApi } from '../../src/targets/http-api.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())
const req = {} as never

/** A token API on loopback: answers from `table` (token → [status, body]); records the paths asked. */
async function startApi(table: Record<string, [number, string]>) {
  const paths: string[] = []
  const sockets = new Set<unknown>()
  const server = http.createServer((request, res) => {
    paths.push(request.url ?? '')
    const token = decodeURIComponent((request.url ?? '').replace(/^\/tokens\//, ''))
    const [status, body] = table[token] ?? [404, 'no']
    res.writeHead(status).end(body)
  })
  server.on('connection', (s) => sockets.add(s))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}/tokens/%s`, paths, sockets, server }
}

describe('HTTP token API', () => {
  it('resolves text and JSON answers, URL-encodes the token, reuses connections', async () => {
    const api = await startApi({
      'a/b c': [200, 'db.internal:5432\n'],
      json: [200, JSON.stringify({ host: '::1', port: 5900 })],
      target: [200, JSON.stringify({ target: 'unix:/run/x.sock' })],
    })
    const resolver = httpTokenApi({ url: api.url, timeoutMs: 2000, cacheMs: 0 })
    d.add(() => resolver.close?.())
    expect(await resolver.resolve('a/b c', req)).toMatchObject({
      target: { host: 'db.internal', port: 5432 },
      trusted: false,
    })
    expect(await resolver.resolve('json', req)).toMatchObject({
      target: { host: '::1', port: 5900 },
    })
    expect(await resolver.resolve('target', req)).toMatchObject({
      target: { kind: 'unix', path: '/run/x.sock' },
    })
    expect(await resolver.resolve('missing', req)).toBeNull()
    expect(api.paths[0]).toBe('/tokens/a%2Fb%20c')
    expect(api.sockets.size).toBe(1) // keep-alive: one connection for four lookups
  })

  it('caches hits and misses for the cache time', async () => {
    let now = 0
    const api = await startApi({ t: [200, 'h:1'] })
    const resolver = httpTokenApi({ url: api.url, timeoutMs: 2000, cacheMs: 1000, now: () => now })
    d.add(() => resolver.close?.())
    await resolver.resolve('t', req)
    await resolver.resolve('t', req)
    await resolver.resolve('x', req)
    await resolver.resolve('x', req)
    expect(api.paths).toHaveLength(2)
    now = 1001
    await resolver.resolve('t', req)
    expect(api.paths).toHaveLength(3)
  })

  it('reports a failing or silent API as an outage (4503), never as an unknown token (4401)', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const api = await startApi({ boom: [500, 'oops'] })
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(d, { tokenApi: api.url, tokenApiCacheMs: 0 }, logger)
    expect(await connectAndClose(`${url}?token=boom`)).toMatchObject({
      code: 4503,
      reason: 'service unavailable',
    })
    expect(await connectAndClose(`${url}?token=unknown-one`)).toMatchObject({ code: 4401 })

    const silent = http.createServer(() => {}) // accepts, never answers
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    d.add(() => {
      silent.closeAllConnections()
      return new Promise((resolve) => silent.close(resolve))
    })
    const resolver = httpTokenApi({
      url: `http://127.0.0.1:${(silent.address() as { port: number }).port}/%s`,
      timeoutMs: 200,
      cacheMs: 0,
    })
    d.add(() => resolver.close?.())
    await expect(resolver.resolve('t', req)).rejects.toThrow(/timed out/)
    expectNoSecretsLogged(logger, ['boom', 'unknown-one'])
  })

  it('end to end: a hit opens the tunnel when the policy allows its target', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const api = await startApi({ 'sess-77': [200, `127.0.0.1:${echo.port}`] })
    const { url } = await startAccessTunnel(
      d,
      { tokenApi: api.url, allow: [`127.0.0.1:${echo.port}`] },
      memoryLogger(),
    )
    const ws = await openWs(d, `${url}?token=sess-77`)
    ws.close()
  })
})
