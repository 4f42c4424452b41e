/**
 * Checksummed bulk transfers each way on every way a tunnel ends, with default flags and binary messages up
 * to 4× the default --max-message-size (the streaming codec relays them as they arrive). 16 MiB per
 * transfer in `npm test`, 256 MiB with GANGWAY_ROBUST=full.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { Digest, randomChunks, sendChunks } from '../helpers/data.js'
import { hashIncoming, pushRandom } from '../helpers/peers.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'
import { scale } from './scale.js'

const MiB = 1024 * 1024
const TOTAL = scale(16 * MiB, 256 * MiB)
const MAX_MESSAGE = 16 * MiB
const TIMEOUT = scale(120_000, 900_000)

const d = createDisposer()
afterEach(() => d.run())

async function upload(): Promise<{ ws: WebSocket; received: Promise<Digest>; sent: Digest }> {
  const target = await startTcpServer()
  d.add(() => target.close())
  const server = await startTunnel(d, tcpTarget(target.port))
  const ws = await openWs(d, server.url())
  const received = hashIncoming(await target.accepted(0))
  const sent = await sendChunks(ws, randomChunks(TOTAL, MAX_MESSAGE), 32 * MiB)
  return { ws, received, sent }
}

describe(`${TOTAL / MiB} MiB each way, checksummed, on every close path`, () => {
  it(
    'client → target, then a client close frame: every byte reaches the target before its EOF',
    async () => {
      const { ws, received, sent } = await upload()
      const wsClosed = closed(ws)
      ws.close(1000)
      const got = await received
      expect([got.bytes, got.hex()]).toEqual([TOTAL, sent.hex()])
      expect((await wsClosed).code).toBe(1000)
    },
    TIMEOUT,
  )

  it(
    'client → target, then the client ends its TCP connection without a close frame (1006)',
    async () => {
      const { ws, received, sent } = await upload()
      ;(ws as unknown as { _socket: { end(): void } })._socket.end()
      const got = await received
      expect([got.bytes, got.hex()]).toEqual([TOTAL, sent.hex()])
    },
    TIMEOUT,
  )

  for (const stalling of [false, true]) {
    it(
      `target → client${stalling ? ', a client that keeps stalling' : ''}, then the target's EOF: every byte before the close 1000`,
      async () => {
        let pushed: Promise<Digest> | undefined
        const target = await startTcpServer((socket) => {
          pushed = pushRandom(socket, TOTAL, 1 * MiB).then((digest) => {
            socket.end()
            return digest
          })
        })
        d.add(() => target.close())
        const server = await startTunnel(d, tcpTarget(target.port))
        const received = new Digest()
        let messages = 0
        const ws = await openWs(d, server.url(), {
          beforeOpen: (w) =>
            w.on('message', (data: Buffer) => {
              received.update(data)
              if (stalling && ++messages % 8 === 0) {
                w.pause()
                setImmediate(() => w.resume())
              }
            }),
        })
        expect((await closed(ws)).code).toBe(1000)
        const sent = await pushed!
        expect([received.bytes, received.hex()]).toEqual([TOTAL, sent.hex()])
      },
      TIMEOUT,
    )
  }

  it(
    'both ways at once, then a client close frame: both intact',
    async () => {
      let pushed: Promise<Digest> | undefined
      let fromClient: Promise<Digest> | undefined
      const target = await startTcpServer((socket) => {
        fromClient = hashIncoming(socket)
        pushed = pushRandom(socket, TOTAL, 1 * MiB)
      })
      d.add(() => target.close())
      const server = await startTunnel(d, tcpTarget(target.port))
      const received = new Digest()
      const ws = await openWs(d, server.url(), {
        beforeOpen: (w) => w.on('message', (data: Buffer) => received.update(data)),
      })
      const sent = await sendChunks(ws, randomChunks(TOTAL, MAX_MESSAGE), 32 * MiB)
      const down = await pushed!
      while (received.bytes < TOTAL) await new Promise((resolve) => ws.once('message', resolve))
      ws.close(1000)
      const up = await fromClient!
      expect([up.bytes, up.hex()]).toEqual([TOTAL, sent.hex()])
      expect([received.bytes, received.hex()]).toEqual([TOTAL, down.hex()])
    },
    TIMEOUT,
  )
})
