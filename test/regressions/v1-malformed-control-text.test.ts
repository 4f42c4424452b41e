/**
 * Found by review: `connect()` parsed every `gangway.v1` text frame with an unguarded `JSON.parse`. A
 * server that is not Gangway but selects `gangway.v1` anyway (naive servers echo the first subprotocol
 * offered) and sends text made the parse throw inside the WebSocket's message handler: an uncaught
 * exception, which kills a Node program (an error in the browser console, and the socket hung until its
 * connect timeout). Now a text frame that is not a control message fails the socket with `BAD_MESSAGE`.
 * The client runs in a child process, as a user's program would.
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { SUBPROTOCOL_V1 } from '../../src/protocol.js'
import { createDisposer } from '../helpers/disposer.js'
import { runModule } from '../helpers/node-program.js'
import { startWsServer } from '../helpers/shim.js'

const d = createDisposer()
afterEach(() => d.run())

const root = fileURLToPath(new URL('../..', import.meta.url))
const shim = pathToFileURL(`${root}dist/lib/web/gangway.js`).href

const PROGRAM = `
import WebSocket from 'ws'
import { connect } from ${JSON.stringify(shim)}
const socket = connect('', { url: process.argv[1], WebSocket, connectTimeout: 0 })
const [opened, closed] = await Promise.allSettled([socket.opened, socket.closed])
console.log(opened.status, opened.reason?.code, closed.status, closed.reason?.code)
`

describe('regression: a v1 text frame that is not a control message', () => {
  it('fails the socket with BAD_MESSAGE instead of an uncaught exception', async () => {
    const url = await startWsServer(d, (ws) => ws.send('hello, not JSON'), SUBPROTOCOL_V1)
    const { code, stdout, stderr } = await runModule(d, PROGRAM, [url], root)
    expect(stderr).toBe('')
    expect(stdout.trim()).toBe('rejected BAD_MESSAGE rejected BAD_MESSAGE')
    expect(code).toBe(0)
  }, 15_000)
})
