import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { firstWsThrough, startNginx } from '../helpers/nginx.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

describe('deploy/nginx-gangway.conf', () => {
  it('proxies WebSocket tunnels through a real nginx, and Gangway logs the browser from X-Forwarded-For', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(echo.port), { trustProxy: '127.0.0.1' }, logger)
    const nginx = await startNginx(d, [(server.address() as { port: number }).port])
    const ws = await firstWsThrough(d, nginx)
    ws.send(Buffer.from('via nginx'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('via nginx')
    // From X-Forwarded-For: the browser's address, without nginx's upstream port.
    expect((await logger.waitFor('tunnel open')).fields['client']).toBe('127.0.0.1')
    expect(nginx.stderr()).not.toMatch(/\[(emerg|alert|crit)\]/)
  })
})
