import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

describe('relay', () => {
  it('echoes a binary message through the tunnel', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const ws = await openWs(d, server.url())
    ws.send(Buffer.from('hello'))
    const [data] = (await once(ws, 'message')) as [Buffer]
    expect(data.toString()).toBe('hello')
  })
})
