/**
 * The browser/Node library against a daemon with an access gate: the token travels as the
 * `gangway.bearer.` subprotocol entry, opens the route it names, and a wrong one surfaces as a typed error.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import WebSocket from 'ws'
import { connect, TunnelError } from '../../web/gangway.js'
import { connectNet } from '../../web/node/index.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'shim-route-token-7Hq2'

async function gated() {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const logger = memoryLogger()
  const routes = parseRoutes(
    { lab: { target: `127.0.0.1:${echo.port}`, tokens: [TOKEN] } },
    'routes',
  )
  const tunnel = await startAccessTunnel(d, { routes }, logger)
  return { ...tunnel, logger }
}

describe('the shim with tokens', () => {
  it('connect() with the right token opens the route and relays bytes; the token is never logged', async () => {
    const { url, logger } = await gated()
    const socket = connect('', { url, token: async () => TOKEN, WebSocket: WebSocket })
    d.add(() => socket.close())
    const info = await socket.opened
    expect(info.remotePort).toBeGreaterThan(0)
    const writer = socket.writable.getWriter()
    await writer.write(new TextEncoder().encode('through the gate'))
    const reader = socket.readable.getReader()
    const { value } = await reader.read()
    expect(new TextDecoder().decode(value)).toBe('through the gate')
    reader.releaseLock()
    writer.releaseLock()
    expect((await logger.waitFor('tunnel open')).fields['route']).toBe('route:lab')
    expectNoSecretsLogged(logger, [TOKEN])
  })

  it('{ route } names the route the client means: the route of the token opens, another is FORBIDDEN (4403)', async () => {
    const { url, logger } = await gated()
    const right = connect({ route: 'lab' }, { url, token: TOKEN, WebSocket: WebSocket })
    d.add(() => right.close())
    await right.opened
    const wrong = connect({ route: 'billing-db' }, { url, token: TOKEN, WebSocket: WebSocket })
    const err = (await wrong.opened.catch((e: unknown) => e)) as TunnelError
    expect(err).toBeInstanceOf(TunnelError)
    expect(err.code).toBe('FORBIDDEN')
    await wrong.closed.catch(() => undefined)
    const refused = await logger.waitFor('tunnel refused')
    expect(String(refused.fields['reason'])).toContain("not the token's route")
  })

  it('a wrong token rejects opened with TunnelError AUTH_FAILED (4401)', async () => {
    const { url } = await gated()
    const socket = connect('', { url, token: 'not-the-token', WebSocket: WebSocket })
    const err = (await socket.opened.catch((e: unknown) => e)) as TunnelError
    expect(err).toBeInstanceOf(TunnelError)
    expect(err.code).toBe('AUTH_FAILED')
    await socket.closed.catch(() => undefined)
  })

  it('the Node adapter maps a refused token to EACCES, as drivers expect', async () => {
    const { url } = await gated()
    const socket = connectNet({ url, token: 'not-the-token', WebSocket: WebSocket })
    const [err] = (await once(socket, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('EACCES')
  })
})
