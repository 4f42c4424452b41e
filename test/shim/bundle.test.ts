import { afterEach, describe, expect, it } from 'vitest'
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
