/**
 * One scenario's fixture for the delivery property (test/helpers/delivery.ts): a fresh TCP sink that
 * collects every byte, and a fresh daemon in front of it, with the hooks a scenario calls.
 */
import type { Socket } from 'node:net'
import { once } from 'node:events'
import type { Disposer } from './disposer.js'
import type { Hooks } from './delivery.js'
import { startTcpServer } from './tcp.js'
import { startTunnel, tcpTarget } from './tunnel.js'

/** A fresh TCP sink and daemon for one scenario; `played` runs it, `received` is what the sink got. */
export async function deliveryRig(d: Disposer) {
  let stalled = false
  const parts: Buffer[] = []
  const ended: Array<Promise<unknown>> = []
  const sink = await startTcpServer((s: Socket) => {
    s.on('data', (chunk: Buffer) => parts.push(chunk))
    ended.push(once(s, 'close'))
    if (stalled) s.pause()
  })
  const server = await startTunnel(d, tcpTarget(sink.port))
  const hooks: Hooks = {
    async stall() {
      stalled = true
      for (const s of sink.sockets) s.pause()
    },
    async resume() {
      stalled = false
      for (const s of sink.sockets) s.resume()
    },
    async daemonClose() {
      for (const t of server.list()) server.closeTunnel(t.id)
    },
  }
  return {
    url: server.url(),
    hooks,
    /** Waits for the tunnel and the sink's sockets to finish (bounded by the daemon's drain), then shuts down. */
    async received(): Promise<Buffer> {
      await hooks.resume()
      await server.close({ drainTimeoutMs: 60_000 })
      await Promise.all(ended)
      await sink.close()
      return Buffer.concat(parts)
    },
  }
}
