import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { Digest, randomChunks, sendChunks } from '../helpers/data.js'
import { hashIncoming, pushAndReceive, pushRandom } from '../helpers/peers.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'

const MiB = 1024 * 1024
const TOTAL = 64 * MiB
const MAX_MESSAGE = 1 * MiB

const d = createDisposer()
afterEach(() => d.run())

/**
 * A client tunnelled to a target that pushes `TOTAL` random bytes (messages up to `MAX_MESSAGE`), then
 * ends the connection; `pushed` resolves with the digest of what the target sent.
 */
async function tunnelFromPushingTarget(listen: (ws: WebSocket) => Digest): Promise<{
  ws: WebSocket
  received: Digest
  pushed: () => Promise<Digest>
}> {
  let pushed: Promise<Digest> | undefined
  const target = await startTcpServer((socket) => {
    pushed = pushRandom(socket, TOTAL, MAX_MESSAGE).then((digest) => {
      socket.end()
      return digest
    })
  })
  d.add(() => target.close())
  const server = await startTunnel(d, tcpTarget(target.port))
  let received: Digest | undefined
  const ws = await openWs(d, server.url(), { beforeOpen: (w) => (received = listen(w)) })
  return { ws, received: received!, pushed: () => pushed! }
}

function hashMessages(ws: WebSocket): Digest {
  const digest = new Digest()
  ws.on('message', (data: Buffer) => digest.update(data))
  return digest
}

/**
 * Hashes what arrives, but stops reading for a turn of the event loop every few messages, so that the
 * daemon's frames queue up in user space now and then instead of going straight into the kernel.
 */
function stallingReader(ws: WebSocket): Digest {
  const digest = new Digest()
  let messages = 0
  ws.on('message', function stallingReaderOnMessage(data: Buffer) {
    digest.update(data)
    if (++messages % 8 !== 0) return
    ws.pause()
    setImmediate(() => ws.resume())
  })
  return digest
}

describe('byte-exact relay (SHA-256 over random data, message sizes 1 B to 1 MiB)', () => {
  it('client → target: 64 MiB arrive intact, then the client close ends the TCP connection', async () => {
    const target = await startTcpServer()
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const ws = await openWs(d, server.url())
    const received = hashIncoming(await target.accepted(0))

    const sent = await sendChunks(ws, randomChunks(TOTAL, MAX_MESSAGE))
    const wsClosed = closed(ws)
    ws.close(1000, 'done')

    const got = await received // resolves on the target's EOF, after every byte was flushed
    expect(got.bytes).toBe(TOTAL)
    expect(got.hex()).toBe(sent.hex())
    expect((await wsClosed).code).toBe(1000)
  })

  it('target → client: 64 MiB arrive intact before the close 1000 that follows the target EOF', async () => {
    const { ws, received, pushed } = await tunnelFromPushingTarget(hashMessages)
    const { code, reason } = await closed(ws)

    expect(code).toBe(1000)
    expect(reason).toBe('target closed the connection')
    const sent = await pushed()
    expect(received.bytes).toBe(TOTAL)
    expect(received.hex()).toBe(sent.hex())
  })

  it('target → client with a client that keeps stalling: 64 MiB intact (reads reuse one buffer only while ws queues nothing)', async () => {
    const { ws, received, pushed } = await tunnelFromPushingTarget(stallingReader)
    const { code } = await closed(ws)

    expect(code).toBe(1000)
    const sent = await pushed()
    expect(received.bytes).toBe(TOTAL)
    expect(received.hex()).toBe(sent.hex())
  })

  it('32 tunnels at once, targets writing chunks of 1 B to 48 KiB: stalling clients, every tunnel intact (small reads of all sockets share one buffer)', async () => {
    const PER_TUNNEL = 2 * MiB
    const pushed: Promise<Digest>[] = []
    const target = await startTcpServer((socket) => {
      pushed.push(
        pushRandom(socket, PER_TUNNEL, 48 * 1024).then((digest) => {
          socket.end()
          return digest
        }),
      )
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    const tunnels = await Promise.all(
      Array.from({ length: 32 }, async () => {
        let received: Digest | undefined
        const ws = await openWs(d, server.url(), {
          beforeOpen: (w) => (received = stallingReader(w)),
        })
        return { received: received!, done: closed(ws) }
      }),
    )
    await Promise.all(tunnels.map((t) => t.done))
    const sent = new Set((await Promise.all(pushed)).map((digest) => digest.hex()))
    expect(sent.size).toBe(32)
    for (const { received } of tunnels) {
      expect(received.bytes).toBe(PER_TUNNEL)
      expect(sent.has(received.hex())).toBe(true)
    }
  })

  it('both ways at once: 64 MiB each way, concurrently, intact', async () => {
    let targetDone: Promise<{ sent: Digest; got: Digest }> | undefined
    const target = await startTcpServer((socket) => {
      targetDone = pushAndReceive(socket, TOTAL, MAX_MESSAGE)
    })
    d.add(() => target.close())
    const server = await startTunnel(d, tcpTarget(target.port))
    let received: Digest | undefined
    const ws = await openWs(d, server.url(), { beforeOpen: (w) => (received = hashMessages(w)) })
    const wsClosed = closed(ws)

    const sentByClient = await sendChunks(ws, randomChunks(TOTAL, MAX_MESSAGE))
    expect((await wsClosed).code).toBe(1000)
    const { sent: sentByTarget, got: gotByTarget } = await targetDone!

    expect(gotByTarget.bytes).toBe(TOTAL)
    expect(gotByTarget.hex()).toBe(sentByClient.hex())
    expect(received!.bytes).toBe(TOTAL)
    expect(received!.hex()).toBe(sentByTarget.hex())
  })
})
