/**
 * Found by review: in gangway.v1, the target's EOF makes `connect()` (without `allowHalfOpen`) end its own
 * side with `void endWrite()`. When bytes were still queued beyond the daemon's credit, `endWrite` waited
 * for them, and a close meanwhile (the caller's `close()`, the daemon's close) rejected that wait with
 * nobody listening: an unhandled rejection, a crash of a Node program using `gangway/web`. Now the
 * rejection is caught there (`closed` and the writer report the end). Runs in a child process, as a user's
 * program would; the daemon runs in the test.
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

/** Writes far more than the daemon's window, reads to the target's EOF, then closes. */
const PROGRAM = `
import WebSocket from 'ws'
import { connect } from ${JSON.stringify(shim)}
// close() sends what was accepted first; the target stopped reading, so it gives up after closeTimeout.
const socket = connect('', { url: process.argv[1], WebSocket, closeTimeout: 200 })
await socket.opened
socket.writable.getWriter().write(new Uint8Array(32 << 20)).catch(() => {})
const reader = socket.readable.getReader()
while (!(await reader.read()).done) {}
await socket.close()
// An unhandled rejection is reported after the current task: give it a few before a clean exit.
for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0))
console.log('closed cleanly')
`

describe('regression: the target EOF while our writes are queued, then close()', () => {
  it('closes without an unhandled rejection (a Node process survives)', async () => {
    // Takes the first bytes, stops reading, and ends its side: our 32 MiB cannot all go out.
    const target = await startTcpServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.pause()
        socket.end()
      })
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const { code, stdout, stderr } = await runModule(d, PROGRAM, [server.url()], root)
    expect(stderr).toBe('')
    expect(stdout.trim()).toBe('closed cleanly')
    expect(code).toBe(0)
  }, 20_000)
})
