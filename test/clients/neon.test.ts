/**
 * Neon's serverless driver (@neondatabase/serverless, node-postgres over one WebSocket) through the daemon
 * with default flags, against a real PostgreSQL 15. The driver sends each batch of pg messages as one
 * WebSocket message, so a 20 MiB parameter is a 20 MiB message: it used to be cut at --max-message-size
 * (4 MiB, close 1009), which websockify never did.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Client, neonConfig } from '@neondatabase/serverless'
import { WebSocket } from 'ws'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { startPostgres, type ContainerService } from '../helpers/containers.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

describe("Neon's serverless driver through the daemon", () => {
  let postgres: ContainerService
  beforeAll(async () => void (postgres = await startPostgres()))
  afterAll(() => postgres?.stop())

  it('sends and reads back a 20 MiB bytea with default flags', async () => {
    const server = await startTunnel(d, tcpTarget(postgres.port, postgres.host))
    const { port } = server.address() as { port: number }
    const client = new Client({
      connectionString: 'postgres://test:test@db.example/test',
    })
    client.neonConfig.webSocketConstructor = WebSocket
    client.neonConfig.wsProxy = () => `127.0.0.1:${port}/`
    client.neonConfig.useSecureWebSocket = false
    client.neonConfig.pipelineConnect = false
    client.neonConfig.forceDisablePgSSL = true
    let ended = false
    // end() never settles in this driver once it was called, or after the connection failed: bound it.
    d.add(() => (ended ? undefined : Promise.race([client.end().catch(() => {}), bound(10_000)])))
    await client.connect()
    const blob = randomBytes(20 * 1024 * 1024)
    const { rows } = await client.query<{ b: Buffer; h: string }>(
      "select $1::bytea as b, encode(sha256($1::bytea), 'hex') as h",
      [blob],
    )
    expect(rows[0]!.h).toBe(createHash('sha256').update(blob).digest('hex'))
    expect(Buffer.compare(rows[0]!.b, blob)).toBe(0)
    ended = true
    await client.end()
  })
})

void neonConfig // the driver's global config stays untouched: each client sets its own

function bound(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
