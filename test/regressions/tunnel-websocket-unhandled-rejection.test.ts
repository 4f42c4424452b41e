/**
 * Found by review: `TunnelWebSocket` read the tunnel in an async loop whose promise nobody handled. When a
 * tunnel that had opened ended with an error (a target reset: 1011, an idle timeout: 4408, a revocation:
 * 4410, …), the pending read rejected and the loop's promise became an unhandled rejection: a console
 * error in a browser, and in Node (the facade runs there with `ws`'s class) the default
 * `--unhandled-rejections=throw` killed the whole process. The error is reported by the `error` and
 * `close` events only now. The facade runs in a child process here, exactly as a user's program would.
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { runModule } from '../helpers/node-program.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const root = fileURLToPath(new URL('../..', import.meta.url))
const shim = pathToFileURL(`${root}dist/lib/web/gangway.js`).href

const PROGRAM = `
import WebSocket from 'ws'
import { TunnelWebSocket } from ${JSON.stringify(shim)}
const ws = new TunnelWebSocket('', { url: process.argv[1], WebSocket })
ws.onopen = () => ws.send(new TextEncoder().encode('reset me'))
ws.onclose = (event) => {
  console.log('close', event.code)
  // Rejections are reported after the current task: give them one macrotask before a clean exit.
  setTimeout(() => process.exit(0), 0)
}
`

describe('regression: TunnelWebSocket when an open tunnel fails', () => {
  it('reports close 1011 without an unhandled rejection (a Node process survives)', async () => {
    const target = await startTcpServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => socket.resetAndDestroy())
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const { code, stdout, stderr } = await runModule(d, PROGRAM, [server.url()], root)
    expect(stderr).toBe('')
    expect(stdout.trim()).toBe('close 1011')
    expect(code).toBe(0)
  }, 15_000)
})
