/**
 * The Redis token resolver against a real Redis in a container (scripts/test-env.sh builds the image).
 */
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { redisTokens } from '../../src/targets/redis.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())
const req = {} as never

let redis: ContainerService
let admin: Redis

beforeAll(async () => {
  redis = await startRedis()
  admin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true })
  await admin.connect()
}, 120_000)

afterAll(async () => {
  admin.disconnect()
  await redis.stop()
})

describe('Redis tokens', () => {
  it('resolves text and JSON values, honours the prefix, and forgets deleted keys (revocation)', async () => {
    await admin.set('gw:text-1', ' 10.0.0.5:5900 ')
    await admin.set(
      'gw:json-1',
      JSON.stringify({ target: '[fd00::1]:22', maxConnections: 2, idleTimeout: 30 }),
    )
    await admin.set('gw:ws-1', JSON.stringify({ host: 'vnc.internal:5901' }))
    await admin.set('gw:ttl-1', 'h:1', 'EX', 600)
    const resolver = redisTokens({
      source: `redis://${redis.host}:${redis.port}/0`,
      prefix: 'gw:',
      timeoutMs: 2000,
    })
    d.add(() => resolver.close?.())
    expect(await resolver.resolve('text-1', req)).toMatchObject({
      target: { host: '10.0.0.5', port: 5900 },
      trusted: false,
    })
    expect(await resolver.resolve('json-1', req)).toMatchObject({
      target: { host: 'fd00::1', port: 22 },
      options: { maxConnections: 2, idleTimeoutMs: 30_000 },
    })
    expect(await resolver.resolve('ws-1', req)).toMatchObject({
      target: { host: 'vnc.internal', port: 5901 },
    })
    expect(await resolver.resolve('ttl-1', req)).not.toBeNull()
    expect(await resolver.resolve('text-1-missing', req)).toBeNull()
    await admin.del('gw:text-1')
    expect(await resolver.resolve('text-1', req)).toBeNull()
  })

  it("reads websockify's source string form (host:port:db:password:namespace)", async () => {
    await admin.select(2)
    await admin.set('ns:tok', 'h:2')
    await admin.select(0)
    const resolver = redisTokens({ source: `${redis.host}:${redis.port}:2::ns`, timeoutMs: 2000 })
    d.add(() => resolver.close?.())
    expect(await resolver.resolve('tok', req)).toMatchObject({ target: { host: 'h', port: 2 } })
  })

  it('end to end: a token opens the tunnel; a Redis that is down gives 4503, never 4401', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    await admin.set('e2e-token-5', `127.0.0.1:${echo.port}`)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(
      d,
      {
        tokenRedis: `redis://${redis.host}:${redis.port}/0`,
        allow: [`127.0.0.1:${echo.port}`],
        connectTimeoutMs: 1000,
      },
      logger,
    )
    const ws = await openWs(d, `${url}?token=e2e-token-5`)
    ws.close()
    expect(await connectAndClose(`${url}?token=absent-token`)).toMatchObject({ code: 4401 })

    // A Redis nobody listens on: the port of a closed echo server.
    const gone = await startEchoServer()
    await gone.close()
    const down = await startAccessTunnel(
      d,
      { tokenRedis: `redis://127.0.0.1:${gone.port}/0`, allow: ['*'], connectTimeoutMs: 500 },
      logger,
    )
    expect(await connectAndClose(`${down.url}?token=e2e-token-5`)).toMatchObject({
      code: 4503,
      reason: 'service unavailable',
    })
    expectNoSecretsLogged(logger, ['e2e-token-5', 'absent-token'])
  })
})
