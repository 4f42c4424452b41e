/**
 * ioredis through a Gangway tunnel: gangway/node's `connectNet` as ioredis's Connector, so the client itself
 * is unmodified. Written as docs/shim.md's snippet, with no cast (a TunnelNetSocket is a `net.Socket` to
 * TypeScript). Used against a plain and a TLS-only Redis.
 */
import { createHash, randomBytes } from 'node:crypto'
import { AbstractConnector, Redis } from 'ioredis'
import { connectNet } from '../../web/node/index.js'
import type { Disposer } from './disposer.js'
import { NodeWebSocket } from './shim.js'

/** A connected ioredis client whose connection is a tunnel at `url`; the disposer disconnects it. */
export async function redisThroughTunnel(disposer: Disposer, url: string): Promise<Redis> {
  class GangwayConnector extends AbstractConnector {
    constructor() {
      super(2000) // ms disconnect() lets the stream end before destroying it (ioredis passes its options)
    }
    connect() {
      // Kept as this.stream, which redis.disconnect() ends (else the tunnel would stay open).
      this.stream = connectNet({ url, WebSocket: NodeWebSocket })
      return Promise.resolve(this.stream)
    }
  }
  const client = new Redis({
    Connector: GangwayConnector,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  })
  disposer.add(() => client.disconnect())
  await client.connect()
  return client
}

/** Sets `key` to `size` random bytes and reads it back: the SHA-256 of what was sent and of what came back. */
export async function blobRoundTrip(
  client: Redis,
  key: string,
  size: number,
): Promise<{ sent: string; back: string }> {
  const value = randomBytes(size)
  await client.set(key, value)
  const back = await client.getBuffer(key)
  return { sent: sha256(value), back: back === null ? 'null' : sha256(back) }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
