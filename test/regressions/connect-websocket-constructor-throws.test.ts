/**
 * Found by review: `connect()` built its WebSocket in an async function started with `void`; when the
 * WebSocket class threw (a URL scheme it refuses, such as `ftp:`, or no WebSocket class in Node 20), the
 * rejection was unhandled: the Node process crashed (a console error in a browser), and `opened`/`closed`
 * never settled with `connectTimeout: 0`. Now both reject with a `NETWORK` TunnelError naming the cause.
 * Runs in a child process, as a user's program would (an unhandled rejection kills it).
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { runModule } from '../helpers/node-program.js'

const d = createDisposer()
afterEach(() => d.run())

const root = fileURLToPath(new URL('../..', import.meta.url))
const shim = pathToFileURL(`${root}dist/lib/web/gangway.js`).href

const PROGRAM = `
import WebSocket from 'ws'
import { connect } from ${JSON.stringify(shim)}
const socket = connect('', { url: 'ftp://127.0.0.1:1/', WebSocket, connectTimeout: 0 })
const [opened, closed] = await Promise.allSettled([socket.opened, socket.closed])
console.log(opened.status, opened.reason?.code, closed.status, closed.reason?.code)
console.log(/protocol/.test(closed.reason?.reason ?? ''))
`

describe('regression: connect() when the WebSocket class throws', () => {
  it('rejects opened and closed with NETWORK instead of an unhandled rejection', async () => {
    const { code, stdout, stderr } = await runModule(d, PROGRAM, [], root)
    expect(stderr).toBe('')
    expect(stdout.trim().split('\n')).toEqual(['rejected NETWORK rejected NETWORK', 'true'])
    expect(code).toBe(0)
  }, 15_000)
})
