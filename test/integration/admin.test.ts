import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { tcpTarget } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { createAdminServer } from '../../src/ops/admin.js'
import { createMetrics } from '../../src/ops/metrics.js'
import { createTunnelServer } from '../../src/gateway/server.js'
import { DEFAULTS, type Config, type Target } from '../../src/config/options.js'

const d = createDisposer()
afterEach(() => d.run())

async function withAdmin(target: Target, token?: string) {
  const config: Config = {
    ...DEFAULTS,
    heartbeatMs: 0,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target,
  }
  const metrics = createMetrics({ defaultMetrics: false })
  const server = createTunnelServer(config, { metrics })
  await server.listen()
  d.add(() => server.close({ drainTimeoutMs: 0 }))
  const admin = createAdminServer({ kind: 'tcp', host: '127.0.0.1', port: 0 }, server, metrics, {
    token,
  })
  await admin.listen()
  d.add(() => admin.close())
  const base = `http://127.0.0.1:${(admin.address() as { port: number }).port}`
  return { server, base }
}

async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
  return res.text()
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('admin listener', () => {
  it('exports tunnel, byte, refusal and dial metrics after known traffic', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const { server, base } = await withAdmin(tcpTarget(echo.port))
    const ws = await openWs(d, server.url())
    ws.send(Buffer.alloc(1000, 1))
    let got = 0
    while (got < 1000) got += ((await once(ws, 'message')) as [Buffer])[0].length

    // Live tunnel: bytes are visible before it closes.
    let text = await scrape(base)
    expect(value(text, 'gangway_tunnels_active{route="default"}')).toBe(1)
    expect(value(text, 'gangway_bytes_total{route="default",direction="up"}')).toBe(1000)
    expect(value(text, 'gangway_bytes_total{route="default",direction="down"}')).toBe(1000)

    const wsClosed = closed(ws)
    ws.close(1000)
    await wsClosed
    await server.close({ drainTimeoutMs: 1000 }) // every tunnel reported
    text = await scrape(base)
    expect(value(text, 'gangway_tunnels_active{route="default"}')).toBe(0)
    expect(value(text, 'gangway_tunnels_total{route="default",outcome="client",code="1000"}')).toBe(
      1,
    )
    expect(value(text, 'gangway_bytes_total{route="default",direction="up"}')).toBe(1000)
    expect(value(text, 'gangway_dial_duration_seconds_count{result="connected"}')).toBe(1)
    expect(value(text, 'gangway_tunnel_duration_seconds_count{route="default"}')).toBe(1)
  })

  it('counts refusals by close code and failed dials', async () => {
    const { server, base } = await withAdmin(tcpTarget(await freePort()))
    expect((await connectAndClose(server.url())).code).toBe(4502)
    expect((await connectAndClose(server.url())).code).toBe(4502)
    const text = await scrape(base)
    expect(value(text, 'gangway_refusals_total{code="4502",reason="target_refused"}')).toBe(2)
    expect(value(text, 'gangway_dial_duration_seconds_count{result="failed"}')).toBe(2)
  })

  it('answers /healthz, and /readyz flips to 503 while the server drains', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const { server, base } = await withAdmin(tcpTarget(echo.port))
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const ready = await fetch(`${base}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ready', tunnels: 0 })

    const ws = await openWs(d, server.url())
    const draining = server.close({ drainTimeoutMs: 60_000 })
    const during = await fetch(`${base}/readyz`)
    expect(during.status).toBe(503)
    expect(await during.json()).toEqual({ status: 'draining', tunnels: 1 })
    ws.close()
    await draining
  })

  it('answers 404 elsewhere and 405 to other methods', async () => {
    const { base } = await withAdmin(tcpTarget(await freePort()))
    expect((await fetch(`${base}/`)).status).toBe(404)
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it("includes prom-client's process metrics under their standard names by default", async () => {
    const metrics = createMetrics()
    const text = await metrics.registry.metrics()
    expect(text).toMatch(/^process_cpu_seconds_total /m)
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m)
    expect(text).not.toMatch(/^gangway_(process|nodejs)_/m)
  })
})

const TOKEN = 'an-admin-token-of-some-length'

describe('admin API (with an admin token)', () => {
  async function authed(base: string, path: string, init: RequestInit = {}) {
    return fetch(`${base}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}` } })
  }

  it('refuses requests without the token, or with a wrong one, with 401', async () => {
    const { base } = await withAdmin(tcpTarget(await freePort()), TOKEN)
    const none = await fetch(`${base}/api/tunnels`)
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/)
    const wrong = await fetch(`${base}/api/tunnels`, { headers: { Authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(401)
    expect((await authed(base, '/api/tunnels')).status).toBe(200)
  })

  it('is off without a token: the API and status page answer 404', async () => {
    const { base } = await withAdmin(tcpTarget(await freePort()))
    expect((await fetch(`${base}/api/tunnels`)).status).toBe(404)
    expect((await fetch(`${base}/status`)).status).toBe(404)
  })

  it('lists live tunnels with their bytes and per-route totals, and closes one with 4410', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const { server, base } = await withAdmin(tcpTarget(echo.port), TOKEN)
    const ws = await openWs(d, server.url())
    ws.send(Buffer.alloc(300, 2))
    let got = 0
    while (got < 300) got += ((await once(ws, 'message')) as [Buffer])[0].length

    const listing = (await (await authed(base, '/api/tunnels')).json()) as {
      tunnels: Array<Record<string, unknown>>
      routes: Record<string, Record<string, number>>
    }
    expect(listing.tunnels).toHaveLength(1)
    const [tunnel] = listing.tunnels
    expect(tunnel).toMatchObject({
      target: `127.0.0.1:${echo.port}`,
      route: 'default',
      bytesUp: 300,
      bytesDown: 300,
    })
    expect(tunnel!['client']).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(listing.routes['default']).toMatchObject({
      active: 1,
      closed: 0,
      bytesUp: 300,
      bytesDown: 300,
    })

    const wsClosed = closed(ws)
    const res = await authed(base, `/api/tunnels/${String(tunnel!['id'])}/close`, {
      method: 'POST',
    })
    expect(res.status).toBe(202)
    expect(await wsClosed).toEqual({ code: 4410, reason: 'closed by an operator' })
    expect((await authed(base, '/api/tunnels/999999/close', { method: 'POST' })).status).toBe(404)
  })
})
