/**
 * The "many nodes" acceptance test: two real gangway processes (same flags, different ports) behind a
 * real nginx (deploy/nginx-gangway.conf with two upstream servers), sharing a real Redis for tokens
 * (`--token-redis`) and state (`--state-redis`). Revocation, per-token limits across nodes, readiness
 * during a drain. In-process details (leases, outages): shared-state.test.ts.
 */
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { fingerprint } from '../../src/log.js'
import { portOf, runGangway, spawnGangway, type GangwayProcess } from '../cli/gangway-process.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { firstWsThrough, startNginx, type Nginx } from '../helpers/nginx.js'
import { freePort, startEchoServer, type TcpServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const ADMIN_TOKEN = 'admin-token-for-the-cluster-test'
const ALPHA = 'alpha-token-limited-to-three'
const BETA = 'beta-token-without-a-limit'
const LIMIT = 3

let redis: ContainerService
let redisUrl: string
let redisAdmin: Redis
let echo: TcpServer

beforeAll(async () => {
  redis = await startRedis()
  redisUrl = `redis://${redis.host}:${redis.port}/0`
  redisAdmin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true })
  await redisAdmin.connect()
  echo = await startEchoServer()
}, 120_000)

afterAll(async () => {
  redisAdmin.disconnect()
  await echo.close()
  await redis.stop()
})

interface Node {
  proc: GangwayProcess
  port: number
  admin: string
  url: string
  api(path: string, init?: RequestInit): Promise<Response>
  tunnelTokens(): Promise<string[]>
}

async function startNode(dir: string, extra: string[] = []): Promise<Node> {
  const proc = spawnGangway(d, [
    ...extra,
    '--log-format=json',
    `--token-redis=${redisUrl}`,
    '--token-redis-prefix=tok:',
    `--state-redis=${redisUrl}`,
    `--allow=127.0.0.1:${echo.port}`,
    '--admin=127.0.0.1:0',
    `--admin-token-file=${join(dir, 'admin-token')}`,
    '--trust-proxy=127.0.0.1',
    '--drain-timeout=60',
    '127.0.0.1:0',
  ])
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  const port = portOf(listening['listen'])
  const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${admin}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    })
  return {
    proc,
    port,
    admin,
    url: `ws://127.0.0.1:${port}/`,
    api,
    async tunnelTokens() {
      const body = (await (await api('/api/tunnels')).json()) as { tunnels: { token: string }[] }
      return body.tunnels.map((t) => t.token)
    },
  }
}

/** A tunnel that echoes, or the close code when the daemon refused it after the upgrade. */
async function attempt(url: string, options: { ca?: string } = {}): Promise<WebSocket | number> {
  const ws = await openWs(d, url, options)
  const ended = closed(ws).then((c) => c.code)
  ws.send(Buffer.from('probe'))
  const echoed = once(ws, 'message').then(
    () => ws,
    () => -1,
  )
  return Promise.race([ended, echoed])
}

async function through(nginx: Nginx, token: string): Promise<WebSocket | number> {
  return attempt(nginx.url(`?token=${token}`), { ca: nginx.ca })
}

/** Waits (bounded) until `n` connections listen on the revocation channel: every daemon has subscribed. */
async function subscribers(n: number): Promise<number> {
  let got = 0
  const deadline = Date.now() + 10_000
  for (let i = 0; i < 10_000 && got !== n && Date.now() < deadline; i++) {
    const answer = (await redisAdmin.pubsub('NUMSUB', 'gangway:revocations')) as [string, number]
    got = Number(answer[1])
  }
  return got
}

function count(list: string[], token: string): number {
  return list.filter((t) => t === fingerprint(token)).length
}

describe('two nodes behind nginx with shared Redis state', () => {
  it('spreads tunnels, limits a token across nodes, revokes it everywhere at once', async () => {
    const dir = await tempDir(d)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    await writeFile(join(dir, 'alpha'), ALPHA + '\n')
    const target = `127.0.0.1:${echo.port}`
    await redisAdmin.set(`tok:${ALPHA}`, JSON.stringify({ target, maxConnections: LIMIT }))
    await redisAdmin.set(`tok:${BETA}`, JSON.stringify({ target }))
    const [a, b] = await Promise.all([startNode(dir), startNode(dir)])
    const nginx = await startNginx(d, [a.port, b.port])
    const nodes = [a, b]

    // Tunnels through nginx land on both nodes (round robin).
    const alpha: WebSocket[] = [await firstWsThrough(d, nginx, `?token=${ALPHA}`)]
    const second = await through(nginx, ALPHA)
    expect(second).not.toBeTypeOf('number')
    alpha.push(second as WebSocket)
    const lists = await Promise.all(nodes.map((n) => n.tunnelTokens()))
    expect(lists.map((l) => count(l, ALPHA))).toEqual([1, 1])

    // The limit holds across nodes: the third fits, the fourth is refused whichever node gets it.
    const third = await through(nginx, ALPHA)
    expect(third).not.toBeTypeOf('number')
    alpha.push(third as WebSocket)
    expect(await through(nginx, ALPHA)).toBe(4429)
    for (const node of nodes) expect(await attempt(`${node.url}?token=${ALPHA}`)).toBe(4429)
    // Closing one frees a slot (the release reaches Redis right after the tunnel ends: bounded retry).
    alpha.shift()!.close()
    let reopened: WebSocket | number = 4429
    for (let i = 0; i < 50 && reopened === 4429; i++) reopened = await through(nginx, ALPHA)
    expect(reopened).not.toBeTypeOf('number')
    alpha.push(reopened as WebSocket)

    const beta = await through(nginx, BETA)
    expect(beta).not.toBeTypeOf('number')

    // One revocation (the command, with the token from a file): both nodes close ALPHA's tunnels.
    expect(await subscribers(2)).toBe(2)
    const closes = alpha.map((ws) => closed(ws))
    const revoke = await runGangway(d, [
      'revoke',
      `--state-redis=${redisUrl}`,
      `--token-file=${join(dir, 'alpha')}`,
    ])
    expect(revoke.stderr).toEqual([])
    expect(revoke.code).toBe(0)
    expect(revoke.stdout[0]).toMatch(
      new RegExp(
        `^revoked token ${fingerprint(ALPHA)} \\(for \\d+ s\\); 2 subscriber\\(s\\) notified$`,
      ),
    )
    for (const c of await Promise.all(closes)) {
      expect(c).toEqual({ code: 4410, reason: 'token revoked' })
    }
    for (const node of nodes) {
      await node.proc.waitForLog((r) => r.msg === 'token revoked: closing its tunnels')
    }
    expect(await through(nginx, ALPHA)).toBe(4401)
    for (const node of nodes) expect(await attempt(`${node.url}?token=${ALPHA}`)).toBe(4401)
    // Other tokens are untouched.
    const betaWs = beta as WebSocket
    betaWs.send(Buffer.from('still open'))
    const [m] = (await once(betaWs, 'message')) as [Buffer]
    expect(m.toString()).toBe('still open')

    // The admin API revokes by fingerprint (what operators see), on every node via any node.
    const betaClosed = closed(betaWs)
    const res = await b.api('/api/revoke', {
      method: 'POST',
      body: JSON.stringify({ fingerprint: fingerprint(BETA), ttl: 120 }),
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ revoked: fingerprint(BETA), ttl: 120, notified: 2 })
    expect(await betaClosed).toEqual({ code: 4410, reason: 'token revoked' })
    expect(await connectAndClose(`${a.url}?token=${BETA}`)).toMatchObject({ code: 4401 })

    // Each node counted what it heard and reports the store as up.
    for (const node of nodes) {
      const metrics = await (await fetch(`${node.admin}/metrics`)).text()
      expect(metrics).toMatch(/^gangway_revocations_total 2$/m)
      expect(metrics).toMatch(/^gangway_state_up 1$/m)
    }

    // No token in any log line.
    for (const node of nodes) {
      const text = node.proc.stdout.join('\n')
      for (const secret of [ALPHA, BETA, ADMIN_TOKEN]) expect(text).not.toContain(secret)
    }
    expect(nginx.stderr()).not.toMatch(/\[(emerg|alert|crit)\]/)
  })

  it('a draining node reports not ready while the other takes the new tunnels through nginx', async () => {
    const dir = await tempDir(d)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    const token = 'gamma-token-for-the-drain'
    await redisAdmin.set(`tok:${token}`, JSON.stringify({ target: `127.0.0.1:${echo.port}` }))
    const [a, b] = await Promise.all([startNode(dir), startNode(dir)])
    const nginx = await startNginx(d, [a.port, b.port])
    const first = await firstWsThrough(d, nginx, `?token=${token}`)
    const held = await attempt(`${a.url}?token=${token}`) // a live tunnel on A keeps it draining
    expect(held).not.toBeTypeOf('number')

    for (const node of [a, b]) expect((await fetch(`${node.admin}/readyz`)).status).toBe(200)
    a.proc.child.kill('SIGTERM')
    await a.proc.waitForLog((r) => r.msg === 'draining')
    const readyA = await fetch(`${a.admin}/readyz`)
    expect(readyA.status).toBe(503)
    expect(await readyA.json()).toMatchObject({ status: 'draining' })
    expect((await fetch(`${b.admin}/readyz`)).status).toBe(200)

    // New tunnels through nginx all succeed: A refuses the TCP connection, nginx moves on to B.
    for (let i = 0; i < 4; i++) expect(await through(nginx, token)).not.toBeTypeOf('number')
    expect((await b.tunnelTokens()).length).toBeGreaterThanOrEqual(4)

    first.close()
    ;(held as WebSocket).close()
    expect(await a.proc.exited).toEqual({ code: 0, signal: null })
  })

  it('with --workers every worker hears a revocation, and the primary serves POST and DELETE /api/revoke', async () => {
    const dir = await tempDir(d)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    const token = 'delta-token-for-the-workers'
    await redisAdmin.set(`tok:${token}`, JSON.stringify({ target: `127.0.0.1:${echo.port}` }))
    const node = await startNode(dir, ['--workers=2'])
    const ws = await attempt(`${node.url}?token=${token}`)
    expect(ws).not.toBeTypeOf('number')
    const wsClosed = closed(ws as WebSocket)
    expect((await fetch(`${node.admin}/readyz`)).status).toBe(200)
    expect(await subscribers(2)).toBe(2) // one per worker
    const res = await node.api('/api/revoke', {
      method: 'POST',
      body: JSON.stringify({ token }),
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ revoked: fingerprint(token), notified: 2 })
    expect(await wsClosed).toEqual({ code: 4410, reason: 'token revoked' })
    expect(await attempt(`${node.url}?token=${token}`)).toBe(4401)
    // Without an exp, a token's revocation lasts the default week.
    const ttl = await redisAdmin.pttl(`gangway:revoked:${fingerprint(token)}`)
    expect(ttl).toBeGreaterThan(7 * 24 * 3600 * 1000 - 60_000)

    // Undone through the primary: every worker takes the token again at once.
    const undo = await node.api('/api/revoke', {
      method: 'DELETE',
      body: JSON.stringify({ token }),
    })
    expect(await undo.json()).toEqual({
      unrevoked: fingerprint(token),
      wasRevoked: true,
      notified: 2,
    })
    for (let i = 0; i < 4; i++) {
      const back = await attempt(`${node.url}?token=${token}`)
      expect(back).not.toBeTypeOf('number')
      ;(back as WebSocket).close()
    }
  })

  it('a node whose Redis does not answer refuses tunnels with tokens (4503), says so once, stays ready', async () => {
    const dir = await tempDir(d)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    await writeFile(join(dir, 'tokens'), `epsilon-token: 127.0.0.1:${echo.port}\n`)
    const nobody = await freePort()
    const proc = spawnGangway(d, [
      '--log-format=json',
      `--token-file=${join(dir, 'tokens')}`,
      `--state-redis=redis://127.0.0.1:${nobody}/0`,
      '--admin=127.0.0.1:0',
      '127.0.0.1:0',
    ])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const url = `ws://127.0.0.1:${portOf(listening['listen'])}/?token=epsilon-token`
    const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
    await proc.waitForLog((r) => r.msg.startsWith('shared state unreachable'))
    for (let i = 0; i < 3; i++) expect(await attempt(url)).toBe(4503)
    const ready = await fetch(`${admin}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ status: 'ready', sharedState: 'unreachable' })
    const health = await fetch(`${admin}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({ status: 'degraded', sharedState: 'unreachable' })
    const metrics = await (await fetch(`${admin}/metrics`)).text()
    expect(metrics).toMatch(/^gangway_state_up 0$/m)
    expect(metrics).toMatch(
      /^gangway_refusals_total\{code="4503",reason="resolver_unavailable"\} 3$/m,
    )
    await proc.waitForLog((r) => r.msg === 'tunnel refused' && r['code'] === 4503)
    const outageLines = proc.stdout.filter((l) => l.includes('shared state unreachable'))
    expect(outageLines).toHaveLength(1)
  })
})
