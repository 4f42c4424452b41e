/**
 * Found by the browser test under load: in gangway.v1, when the client had sent `eof` and the target then
 * ended while the daemon was holding its last bytes back for the client's credit, the target socket's
 * 'close' tore the tunnel down with 1011 ("target connection closed") and those bytes were lost. The race
 * needs the last bytes and the FIN to be read together, so this repeats the exchange that exposed it:
 * an echo with half-close and a small receive window, every run must end cleanly with every byte.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { connect } from '../../web/gangway.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('regression: gangway.v1 target close while bytes wait for credit', () => {
  it('20 half-closed echo exchanges with a small window all deliver every byte and end cleanly', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    for (let run = 0; run < 20; run++) {
      const payload = randomBytes(512 * 1024 + run * 4099)
      const socket = connect('', {
        url: server.url(),
        highWaterMark: 64 * 1024,
        WebSocket,
      })
      await socket.opened
      const writer = socket.writable.getWriter()
      void writer.write(payload).then(() => writer.close()) // then eof: the target sees FIN
      const chunks: Uint8Array[] = []
      const reader = socket.readable.getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        chunks.push(value)
      }
      const got = Buffer.concat(chunks)
      expect(got.length, `run ${run}`).toBe(payload.length)
      expect(sha(got), `run ${run}`).toBe(sha(payload))
      await socket.closed // rejects with TunnelError on 1011
    }
  })
})
