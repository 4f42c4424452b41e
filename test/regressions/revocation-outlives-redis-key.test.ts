/**
 * Regression: a node remembered a revocation it heard on the channel for a minute, whatever Redis said.
 * Once the `revoked:` key was deleted (or expired after a re-revoke with `--ttl 1`), the token passed the
 * Redis check, its target was **dialled** (`tunnel open`), and the tunnel was then closed with 4410. Memory
 * must follow Redis: a deleted or expired key ends the revocation on every node at once, and a revoked
 * token is refused (4401) before anything is dialled, even when the revocation arrives while the gate is
 * still deciding. Two in-process nodes, one real redis-server.
 */
import { once } from 'node:events'
import http from 'node:http'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { parseRoutes } from '../../src/config/routes.js'
import { fingerprint } from '../../src/log.js'
import { createSharedState } from '../../src/state/redis-state.js'
import { startNode, type Node } from '../helpers/cluster.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer, type RedisProcess } from '../helpers/redis-server.js'
import { startEchoServer, type TcpServer } from '../helpers/tcp.js'
import { memoryLogger, type MemoryLogger } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const once_ = createDisposer()
const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'token-revoked-by-mistake'
const PRINT = fingerprint(TOKEN)
const PREFIX = 'undo:'

let redis: RedisProcess
let direct: Redis
let echo: TcpServer

beforeAll(async () => {
  redis = await startRedisServer(once_)
  direct = new Redis(redis.url, { lazyConnect: true })
  await direct.connect()
  echo = await startEchoServer()
}, 60_000)

afterAll(async () => {
  direct.disconnect()
  await echo.close()
  await once_.run()
})

async function twoNodes(): Promise<{ nodes: Node[]; logger: MemoryLogger }> {
  const logger = memoryLogger()
  const routes = parseRoutes(
    { echo: { target: `127.0.0.1:${echo.port}`, tokens: [TOKEN] } },
    'routes',
    process.cwd(),
  )
  const nodes = [
    await startNode(d, redis.url, { routes }, logger, { prefix: PREFIX }),
    await startNode(d, redis.url, { routes }, logger, { prefix: PREFIX }),
  ]
  return { nodes, logger }
}

/** Opens a tunnel and checks it echoes and stays open (a close 4410 right after opening fails it). */
async function echoes(url: string): Promise<WebSocket> {
  const ws = await openWs(d, `${url}?token=${TOKEN}`)
  const ended = closed(ws).then(({ code }) => `closed ${code}`)
  ws.send(Buffer.from('still mine'))
  const echoed = once(ws, 'message').then(([m]) => (m as Buffer).toString())
  expect(await Promise.race([echoed, ended])).toBe('still mine')
  return ws
}

/** Revokes on every node and waits until both heard it (their live tunnel closed with 4410). */
async function revokeEverywhere(nodes: Node[], ttlMs: number): Promise<void> {
  const live = await Promise.all(nodes.map((n) => echoes(n.url)))
  const closes = live.map((ws) => closed(ws))
  const revoker = createSharedState({ url: redis.url, prefix: PREFIX })
  d.add(() => revoker.close())
  await revoker.connected()
  expect(await revoker.revoke(PRINT, ttlMs)).toBe(2)
  expect(await Promise.all(closes)).toEqual([
    { code: 4410, reason: 'token revoked' },
    { code: 4410, reason: 'token revoked' },
  ])
}

describe('a revocation ends when Redis no longer has it', () => {
  it('deleting the revoked: key lets the token in again on every node, without a 4410 after the dial', async () => {
    const { nodes, logger } = await twoNodes()
    await revokeEverywhere(nodes, 60_000)
    const dialsBefore = echo.sockets.length
    for (const node of nodes) {
      expect(await connectAndClose(`${node.url}?token=${TOKEN}`)).toMatchObject({ code: 4401 })
    }
    // Refused before the dial: the target saw no connection and no tunnel was opened.
    expect(echo.sockets.length).toBe(dialsBefore)
    const opened = logger.lines.filter((l) => l.msg === 'tunnel open').length

    expect(await direct.del(`${PREFIX}revoked:${PRINT}`)).toBe(1)
    for (const node of nodes) (await echoes(node.url)).close()
    expect(logger.lines.filter((l) => l.msg === 'tunnel open').length).toBe(opened + 2)
  })

  it('a revocation that expires (re-revoked with a 1 s TTL) lets the token in again on every node', async () => {
    const { nodes } = await twoNodes()
    await revokeEverywhere(nodes, 60_000)
    // The event that the key is gone: Redis's own expiry notification (on this test server only).
    await direct.config('SET', 'notify-keyspace-events', 'Ex')
    const listener = direct.duplicate()
    d.add(() => listener.disconnect())
    await listener.subscribe('__keyevent@0__:expired')
    const expired = new Promise<void>((resolve) =>
      listener.on('message', (_channel: string, key: string) => {
        if (key === `${PREFIX}revoked:${PRINT}`) resolve()
      }),
    )
    const revoker = createSharedState({ url: redis.url, prefix: PREFIX })
    d.add(() => revoker.close())
    await revoker.connected()
    await revoker.revoke(PRINT, 1_000)
    await expired
    expect(await direct.exists(`${PREFIX}revoked:${PRINT}`)).toBe(0)
    for (const node of nodes) (await echoes(node.url)).close()
  })
})

describe('a revocation heard while the gate decides', () => {
  it('refuses the token with 4401 before its target is dialled (was: dialled, tunnel open, then 4410)', async () => {
    // A token API that holds its answer until the test lets it go: the revocation lands in between.
    let answer: (() => void) | undefined
    let wasAsked: () => void = () => undefined
    const asked = new Promise<void>((resolve) => (wasAsked = resolve))
    const api = http.createServer((_req, res) => {
      answer = () => res.writeHead(200).end(`127.0.0.1:${echo.port}`)
      wasAsked()
    })
    api.listen(0, '127.0.0.1')
    await once(api, 'listening')
    d.add(() => {
      api.closeAllConnections()
      return new Promise<void>((resolve) => api.close(() => resolve()))
    })
    const apiPort = (api.address() as { port: number }).port
    const logger = memoryLogger()
    const node = await startNode(
      d,
      redis.url,
      {
        tokenApi: `http://127.0.0.1:${apiPort}/t/%s`,
        tokenApiCacheMs: 0,
        allow: [`127.0.0.1:${echo.port}`],
      },
      logger,
      { prefix: 'race:' },
    )
    const dialsBefore = echo.sockets.length
    const refused = connectAndClose(`${node.url}?token=${TOKEN}`)
    await asked // the gate checked Redis (not revoked) and now waits for the token API
    const revoker = createSharedState({ url: redis.url, prefix: 'race:' })
    d.add(() => revoker.close())
    await revoker.connected()
    await revoker.revoke(PRINT, 60_000)
    await logger.waitFor('token revoked: closing its tunnels')
    answer!()
    expect(await refused).toMatchObject({ code: 4401, reason: 'unauthorized' })
    expect(echo.sockets.length).toBe(dialsBefore)
    expect(logger.lines.filter((l) => l.msg === 'tunnel open')).toEqual([])
  })
})
