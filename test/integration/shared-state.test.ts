/**
 * Shared state across nodes (`--state-redis`) with in-process nodes and a real Redis in a container:
 * revocations, per-token limits counted across nodes, crashed nodes' slots, single-use JWT ids, and the
 * fail-closed behaviour while Redis is unreachable. The same with real processes behind nginx:
 * cluster.test.ts.
 */
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { fingerprint } from '../../src/log.js'
import { createSharedState } from '../../src/state/redis-state.js'
import { startCuttableRelay, startNode } from '../helpers/cluster.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer, type TcpServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { tempDir } from '../helpers/tmp.js'
import { createAdminServer } from '../../src/ops/admin.js'
import { createMetrics } from '../../src/ops/metrics.js'
import { singleUseToken } from '../helpers/jwt.js'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

let redis: ContainerService
let redisUrl: string
let admin: Redis
let echo: TcpServer

beforeAll(async () => {
  redis = await startRedis()
  redisUrl = `redis://${redis.host}:${redis.port}/0`
  admin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true })
  await admin.connect()
  echo = await startEchoServer()
}, 120_000)

afterAll(async () => {
  admin.disconnect()
  await echo.close()
  await redis.stop()
})

function routes(maxConnections?: number) {
  return parseRoutes(
    {
      echo: {
        target: `127.0.0.1:${echo.port}`,
        tokens: ['token-alpha-1', 'token-beta-2'],
        ...(maxConnections === undefined ? {} : { maxConnections }),
      },
    },
    'routes',
    process.cwd(),
  )
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  ws.send(Buffer.from(text))
  const [m] = (await once(ws, 'message')) as [Buffer]
  return m.toString()
}

/** A tunnel that echoes, or undefined when the daemon closed it instead (a refusal after the upgrade). */
async function echoingTunnel(url: string): Promise<WebSocket | undefined> {
  const ws = await openWs(d, url)
  const ended = closed(ws).then(() => undefined)
  ws.send(Buffer.from('probe'))
  const echoed = once(ws, 'message').then(
    () => ws,
    () => undefined,
  )
  return Promise.race([ended, echoed])
}

describe('shared state in Redis', () => {
  it('a revocation closes the token’s tunnels on every node (4410) and refuses it from then on (4401)', async () => {
    const logger = memoryLogger()
    const prefix = 'rev1:'
    const a = await startNode(d, redisUrl, { routes: routes() }, logger, { prefix })
    const b = await startNode(d, redisUrl, { routes: routes() }, logger, { prefix })
    const onA = await openWs(d, `${a.url}?token=token-alpha-1`)
    const onB = await openWs(d, `${b.url}?token=token-alpha-1`)
    const other = await openWs(d, `${b.url}?token=token-beta-2`)
    const closes = [closed(onA), closed(onB)]

    const revoker = createSharedState({ url: redisUrl, prefix })
    d.add(() => revoker.close())
    await revoker.connected()
    const print = fingerprint('token-alpha-1')
    expect(await revoker.revoke(print, 60_000)).toBe(2) // both nodes subscribed
    expect(await Promise.all(closes)).toEqual([
      { code: 4410, reason: 'token revoked' },
      { code: 4410, reason: 'token revoked' },
    ])
    for (const node of [a, b]) {
      expect(await connectAndClose(`${node.url}?token=token-alpha-1`)).toMatchObject({ code: 4401 })
    }
    expect(await roundTrip(other, 'still here')).toBe('still here')
    expect(await admin.pttl(`${prefix}revoked:${print}`)).toBeGreaterThan(50_000)
    expect(logger.lines.some((l) => JSON.stringify(l).includes('token-alpha-1'))).toBe(false)
  })

  it('counts maxConnections across nodes: N open on two nodes, the next gets 4429, a close frees a slot', async () => {
    const logger = memoryLogger()
    const prefix = 'lim1:'
    const a = await startNode(d, redisUrl, { routes: routes(3) }, logger, { prefix })
    const b = await startNode(d, redisUrl, { routes: routes(3) }, logger, { prefix })
    const t1 = await openWs(d, `${a.url}?token=token-alpha-1`)
    await openWs(d, `${b.url}?token=token-alpha-1`)
    await openWs(d, `${a.url}?token=token-beta-2`) // a route limit: every token of the route counts
    for (const node of [a, b]) {
      expect(await connectAndClose(`${node.url}?token=token-alpha-1`)).toMatchObject({ code: 4429 })
    }
    expect(await admin.zcard(`${prefix}conns:route:echo`)).toBe(3)
    t1.close()
    await logger.waitFor('tunnel closed')
    // The release is sent when the tunnel ends; wait (bounded) until Redis has it.
    for (let i = 0; i < 100 && (await admin.zcard(`${prefix}conns:route:echo`)) !== 2; i++) {
      await admin.ping()
    }
    const again = await openWs(d, `${b.url}?token=token-alpha-1`)
    expect(await roundTrip(again, 'slot freed')).toBe('slot freed')
  })

  it('frees the slots of a node that died without releasing them once its lease runs out', async () => {
    const logger = memoryLogger()
    const prefix = 'crash1:'
    const leaseMs = 400
    const crashed = createSharedState({ url: redisUrl, prefix, leaseMs })
    d.add(() => crashed.close())
    await crashed.connected()
    expect(await crashed.slots.acquire('route:echo', 1)).toBeTypeOf('function')
    crashed.slots.stop() // the node is gone: no more renewals, and its release never comes
    const b = await startNode(d, redisUrl, { routes: routes(1) }, logger, { prefix, leaseMs })
    expect(await connectAndClose(`${b.url}?token=token-alpha-1`)).toMatchObject({ code: 4429 })
    // Bounded poll: the lease expires in Redis's own clock.
    let ws: WebSocket | undefined
    const deadline = Date.now() + 10_000
    for (let i = 0; i < 5000 && ws === undefined && Date.now() < deadline; i++) {
      ws = await echoingTunnel(`${b.url}?token=token-alpha-1`)
    }
    expect(ws).toBeDefined()
  })

  it('a live node renews its leases: its tunnels keep their slots past one lease', async () => {
    const logger = memoryLogger()
    const prefix = 'renew1:'
    // 1 s: with 300 ms, a renewal delayed on a busy machine let the lease lapse (and the slot go).
    const a = await startNode(d, redisUrl, { routes: routes(1) }, logger, { prefix, leaseMs: 1000 })
    await openWs(d, `${a.url}?token=token-alpha-1`)
    const member = (await admin.zrange(`${prefix}conns:route:echo`, 0, -1))[0]!
    const first = Number(await admin.zscore(`${prefix}conns:route:echo`, member))
    let later = first
    const deadline = Date.now() + 10_000
    for (let i = 0; i < 100_000 && later <= first + 1000 && Date.now() < deadline; i++) {
      later = Number(await admin.zscore(`${prefix}conns:route:echo`, member))
    }
    expect(later).toBeGreaterThan(first + 1000) // renewed at least once, past the first expiry
    expect(await connectAndClose(`${a.url}?token=token-beta-2`)).toMatchObject({ code: 4429 })
  })

  it('a single-use signed token opens one tunnel across all nodes, not one per node', async () => {
    const dir = await tempDir(d)
    const keyFile = join(dir, 'jwt.key')
    await writeFile(keyFile, 'a-secret-of-at-least-thirty-two-bytes!!')
    const config = {
      jwtKey: keyFile,
      jwtSingleUse: true,
      allow: [`127.0.0.1:${echo.port}`],
    }
    const logger = memoryLogger()
    const a = await startNode(d, redisUrl, config, logger, { prefix: 'jti1:' })
    const b = await startNode(d, redisUrl, config, logger, { prefix: 'jti1:' })
    const token = await singleUseToken(keyFile, `127.0.0.1:${echo.port}`)
    const first = await echoingTunnel(`${a.url}?token=${token}`)
    expect(first).toBeDefined()
    expect(await connectAndClose(`${b.url}?token=${token}`)).toMatchObject({ code: 4401 })
    expect(await connectAndClose(`${a.url}?token=${token}`)).toMatchObject({ code: 4401 })
    const keys = await admin.keys('jti1:jti:*')
    expect(keys).toHaveLength(1)
    expect(await admin.pttl(keys[0]!)).toBeGreaterThan(50_000)
  })

  it('fails closed while Redis is unreachable: 4503 for new tunnels, live ones untouched, logged once', async () => {
    const relay = await startCuttableRelay(redis.port)
    d.add(() => relay.close())
    const logger = memoryLogger()
    const prefix = 'out1:'
    const a = await startNode(
      d,
      `redis://127.0.0.1:${relay.port}/0`,
      { routes: routes(5) },
      logger,
      {
        prefix,
      },
    )
    const live = await openWs(d, `${a.url}?token=token-alpha-1`)
    expect(a.state.healthy()).toBe(true)
    const adminServer = createAdminServer(
      { kind: 'tcp', host: '127.0.0.1', port: 0 },
      a.server,
      createMetrics({ defaultMetrics: false }),
      { state: a.state },
    )
    await adminServer.listen()
    d.add(() => adminServer.close())
    const readyz = `http://127.0.0.1:${(adminServer.address() as { port: number }).port}/readyz`
    expect((await fetch(readyz)).status).toBe(200)

    await relay.cut()
    await logger.waitFor('shared state unreachable: new tunnels with tokens are refused (4503)')
    expect(a.state.healthy()).toBe(false)
    // Still ready: a Redis blip must not pull every node (the node refuses what it cannot check itself).
    const degraded = await fetch(readyz)
    expect(degraded.status).toBe(200)
    expect(await degraded.json()).toMatchObject({ status: 'ready', sharedState: 'unreachable' })
    for (let i = 0; i < 3; i++) {
      expect(await connectAndClose(`${a.url}?token=token-beta-2`)).toMatchObject({
        code: 4503,
        reason: 'service unavailable',
      })
    }
    expect(await roundTrip(live, 'during the outage')).toBe('during the outage')
    const outageLines = logger.lines.filter((l) => l.msg.startsWith('shared state unreachable'))
    expect(outageLines).toHaveLength(1)

    // A revocation published while this node was cut off is applied when it is back.
    const revoker = createSharedState({ url: redisUrl, prefix })
    d.add(() => revoker.close())
    await revoker.connected()
    expect(await revoker.revoke(fingerprint('token-alpha-1'), 60_000)).toBe(0)
    const liveClosed = closed(live)
    await relay.restore()
    await logger.waitFor('shared state reachable again')
    expect(await liveClosed).toEqual({ code: 4410, reason: 'token revoked' })
    expect(await (await fetch(readyz)).json()).toMatchObject({ sharedState: 'ok' })
    const back = await openWs(d, `${a.url}?token=token-beta-2`)
    expect(await roundTrip(back, 'back')).toBe('back')
  })

  it('a node that starts while Redis is down refuses with 4503 and reports unhealthy', async () => {
    const relay = await startCuttableRelay(redis.port)
    d.add(() => relay.close())
    await relay.cut()
    const logger = memoryLogger()
    const a = await startNode(
      d,
      `redis://127.0.0.1:${relay.port}/0`,
      { routes: routes() },
      logger,
      {
        prefix: 'out2:',
        waitForRedis: false,
      },
    )
    await logger.waitFor('shared state unreachable: new tunnels with tokens are refused (4503)')
    expect(a.state.healthy()).toBe(false)
    expect(await connectAndClose(`${a.url}?token=token-alpha-1`)).toMatchObject({ code: 4503 })
    await relay.restore()
    await logger.waitFor('shared state reachable again')
    expect(a.state.healthy()).toBe(true)
    await openWs(d, `${a.url}?token=token-alpha-1`)
  })
})
