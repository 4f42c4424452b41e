/**
 * Unmodified database drivers through gangway/node and a real daemon: node-postgres against a real
 * PostgreSQL 15, ioredis against a real Redis 7 (both in containers built by scripts/test-env.sh).
 */
import { createHash, randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { startPostgres, startRedis, type ContainerService } from '../helpers/containers.js'
import { NodeWebSocket } from '../helpers/shim.js'
import { blobRoundTrip, redisThroughTunnel } from '../helpers/redis-client.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { createNetSocket } from '../../web/node/index.js'
import { freePort } from '../helpers/tcp.js'

const d = createDisposer()
afterEach(() => d.run())

describe('pg through the tunnel', () => {
  let postgres: ContainerService
  beforeAll(async () => void (postgres = await startPostgres()))
  afterAll(() => postgres?.stop())

  function client(url: string, port = 5432) {
    const c = new pg.Client({
      host: 'db.example',
      port,
      user: 'test',
      password: 'test',
      database: 'test',
      stream: () => createNetSocket({ url, WebSocket: NodeWebSocket, address: '' }),
    })
    d.add(() => c.end().catch(() => {}))
    return c
  }

  it('logs in (SCRAM), queries, moves a 20 MB result and a 4 MB parameter byte-exact', async () => {
    const server = await startTunnel(d, tcpTarget(postgres.port, postgres.host))
    const c = client(server.url())
    await c.connect()
    const { rows } = await c.query<{ version: string }>('select version()')
    expect(rows[0]!.version).toMatch(/^PostgreSQL 15/)

    const big = await c.query<{ n: number; s: string }>(
      'select n, repeat(md5(n::text), 10) as s from generate_series(1, 60000) n',
    )
    expect(big.rows).toHaveLength(60000)
    expect(big.rows[59999]!.s).toBe(createHash('md5').update('60000').digest('hex').repeat(10))

    const blob = randomBytes(4 * 1024 * 1024)
    const echoed = await c.query<{ b: Buffer; h: string }>(
      "select $1::bytea as b, encode(sha256($1::bytea), 'hex') as h",
      [blob],
    )
    expect(echoed.rows[0]!.h).toBe(createHash('sha256').update(blob).digest('hex'))
    expect(Buffer.compare(echoed.rows[0]!.b, blob)).toBe(0)
    await c.end()
  })

  it('runs a pool of clients with concurrent queries', async () => {
    const server = await startTunnel(d, tcpTarget(postgres.port, postgres.host))
    const pool = new pg.Pool({
      user: 'test',
      password: 'test',
      database: 'test',
      max: 4,
      stream: () => createNetSocket({ url: server.url(), WebSocket: NodeWebSocket, address: '' }),
    })
    d.add(() => pool.end())
    const sums = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        pool.query<{ s: string }>('select sum(n)::text as s from generate_series(1, $1::int) n', [
          1000 * (i + 1),
        ]),
      ),
    )
    sums.forEach((r, i) => {
      const n = 1000 * (i + 1)
      expect(r.rows[0]!.s).toBe(String((n * (n + 1)) / 2))
    })
  })

  it('sees a refused target as ECONNREFUSED, as with a direct connection', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const err = (await client(server.url())
      .connect()
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as NodeJS.ErrnoException
    expect(err.code).toBe('ECONNREFUSED')
  })
})

describe('ioredis through the tunnel', () => {
  let redis: ContainerService
  beforeAll(async () => void (redis = await startRedis()))
  afterAll(() => redis?.stop())

  it('uses a Connector: commands, a pipeline and a 16 MiB value arrive intact', async () => {
    const server = await startTunnel(d, tcpTarget(redis.port, redis.host))
    const client = await redisThroughTunnel(d, server.url())
    expect(await client.ping()).toBe('PONG')
    const pipeline = client.pipeline()
    for (let i = 0; i < 1000; i++) pipeline.incr('counter')
    const results = await pipeline.exec()
    expect(results!.at(-1)).toEqual([null, 1000])
    const blob = await blobRoundTrip(client, 'blob', 16 * 1024 * 1024)
    expect(blob.back).toBe(blob.sent)
    expect(await client.quit()).toBe('OK')
  })

  it('disconnect() closes the tunnel: the Connector hands ioredis its stream', async () => {
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(redis.port, redis.host), {}, logger)
    const client = await redisThroughTunnel(d, server.url())
    expect(await client.ping()).toBe('PONG')
    client.disconnect()
    const closed = await logger.waitFor('tunnel closed') // never, if ioredis has no stream to end
    expect(closed.fields.code).toBe(1000)
  }, 30_000)
})
