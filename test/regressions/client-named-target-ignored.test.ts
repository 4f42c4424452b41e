/**
 * Issue 13, finding 11: `?address=` (or `?target=`) was silently ignored by a daemon with a fixed TARGET
 * and for a token that resolves to a route, when client-named targets are off: the page (or `gangway
 * client --target`) that named one reached a different target without being told. docs/auth.md says 4403.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { BIN } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'route-token-for-the-named-target-test'

async function echo() {
  const server = await startEchoServer()
  d.add(() => server.close())
  return server
}

describe('a client-named target is refused, never ignored (issue 13, finding 11)', () => {
  it('a daemon with a fixed TARGET: 4403, nothing dialled', async () => {
    const fixed = await echo()
    const named = await echo()
    const server = await startTunnel(d, tcpTarget(fixed.port))
    for (const query of [`address=127.0.0.1:${named.port}`, `target=127.0.0.1:${named.port}`]) {
      const result = await connectAndClose(`${server.url()}?${query}`)
      expect(result, query).toMatchObject({ code: 4403 })
    }
    expect(fixed.sockets).toHaveLength(0)
    expect(named.sockets).toHaveLength(0)
    // Without it, the fixed target as before.
    const ws = await openWs(d, server.url())
    ws.send(Buffer.from('fixed'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('fixed')
  })

  it("a token that resolves to a route, client-named targets off: 4403, not the route's target", async () => {
    const own = await echo()
    const named = await echo()
    const routes = parseRoutes({ db: { target: `127.0.0.1:${own.port}`, tokens: [TOKEN] } }, 'r')
    const { url } = await startAccessTunnel(d, { routes }, memoryLogger())
    const result = await connectAndClose(`${url}?token=${TOKEN}&address=127.0.0.1:${named.port}`)
    expect(result).toMatchObject({ code: 4403 })
    expect(own.sockets).toHaveLength(0)
    expect(named.sockets).toHaveLength(0)
  })

  it('gangway client --target against a fixed-target daemon: one line naming 4403, exit 1', async () => {
    const fixed = await echo()
    const named = await echo()
    const server = await startTunnel(d, tcpTarget(fixed.port))
    const child = spawn(
      process.execPath,
      [BIN, 'client', '--stdio', '--url', server.url(), '--target', `127.0.0.1:${named.port}`],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    )
    d.add(() => child.kill('SIGKILL'))
    const err: Buffer[] = []
    child.stderr.on('data', (c: Buffer) => err.push(c))
    child.stdin.on('error', () => {})
    child.stdin.end('x')
    const [code] = (await once(child, 'close')) as [number]
    expect(code).toBe(1)
    expect(Buffer.concat(err).toString()).toMatch(/forbidden \(4403\)/)
    expect(fixed.sockets).toHaveLength(0)
  })
})
