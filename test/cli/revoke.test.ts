import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/log.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { portOf, runGangway, spawnGangway, type GangwayProcess } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

describe('gangway revoke', () => {
  it('says what is missing or wrong with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['revoke', '--fingerprint', '3f2a9c01'], /--state-redis \(or a --config with stateRedis\)/],
      [['revoke', '--state-redis', 'redis://127.0.0.1:1/0'], /exactly one of --fingerprint/],
      [
        ['revoke', '--state-redis', 'redis://127.0.0.1:1/0', '--fingerprint', 'xyz'],
        /a fingerprint is 8 hex characters/,
      ],
      [['revoke', '--state-redis', 'localhost:6379', '--fingerprint', '3f2a9c01'], /redis:\/\//],
      [
        [
          'revoke',
          '--state-redis',
          'redis://127.0.0.1:1/0',
          '--fingerprint',
          '3f2a9c01',
          '--ttl',
          '-1',
        ],
        /--ttl/,
      ],
      [
        [
          'revoke',
          '--undo',
          '--state-redis',
          'redis://127.0.0.1:1/0',
          '--fingerprint',
          '3f2a9c01',
          '--ttl',
          '5',
        ],
        /--undo takes no --ttl/,
      ],
      [['revoke', '--undo', '--fingerprint', '3f2a9c01'], /--state-redis/],
    ]
    for (const [args, message] of cases) {
      const result = await runGangway(d, args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr.join('\n')).toMatch(message)
    }
  })

  it('exits 1 with one line when Redis does not answer', async () => {
    const port = await freePort()
    const result = await runGangway(d, [
      'revoke',
      '--state-redis',
      `redis://127.0.0.1:${port}/0`,
      '--fingerprint',
      '3f2a9c01',
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(/^gangway: shared state unreachable: .*ECONNREFUSED/)
    expect(result.stdout).toEqual([])
  })

  it('a daemon refuses --state-redis without tokens (nothing to share), exit code 2', async () => {
    const result = await runGangway(d, [
      '--state-redis=redis://127.0.0.1:1/0',
      '127.0.0.1:0',
      '127.0.0.1:1',
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toEqual([
      'gangway: --state-redis shares token state between nodes: it needs tokens or routes',
    ])
  })
})

const TOKEN = 'cli-token-revoked-then-restored'
const ADMIN_TOKEN = 'admin-token-for-the-undo-test'

describe('gangway revoke --undo and DELETE /api/revoke, two daemons sharing a real Redis', () => {
  it('ends a revocation on every node at once: the token is accepted again without a restart', async () => {
    const redis = await startRedisServer(d)
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const dir = await tempDir(d)
    await writeFile(join(dir, 'tokens'), `${TOKEN}: 127.0.0.1:${echo.port}\n`)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    const daemons: { proc: GangwayProcess; url: string; admin: string }[] = []
    for (let i = 0; i < 2; i++) {
      const proc = spawnGangway(d, [
        `--state-redis=${redis.url}`,
        '--log-format=json',
        `--token-file=${join(dir, 'tokens')}`,
        '--admin=127.0.0.1:0',
        `--admin-token-file=${join(dir, 'admin-token')}`,
        '127.0.0.1:0',
      ])
      const listening = await proc.waitForLog((r) => r.msg === 'listening')
      daemons.push({
        proc,
        url: `ws://127.0.0.1:${portOf(listening['listen'])}/?token=${TOKEN}`,
        admin: `http://127.0.0.1:${portOf(listening['admin'])}/api/revoke`,
      })
    }
    // Bounded: until both daemons listen on the revocation channel.
    const watcher = new Redis(redis.url, { lazyConnect: true })
    await watcher.connect()
    d.add(() => watcher.disconnect())
    let subscribers = 0
    for (let i = 0; i < 10_000 && subscribers < 2; i++) {
      const answer = (await watcher.pubsub('NUMSUB', 'gangway:revocations')) as [string, number]
      subscribers = Number(answer[1])
    }
    expect(subscribers).toBe(2)
    const print = fingerprint(TOKEN)
    const redisArgs = ['--state-redis', redis.url, '--fingerprint', print]

    async function echoesOnBoth(): Promise<void> {
      for (const daemon of daemons) {
        const ws = await openWs(d, daemon.url)
        const ended = closed(ws).then(({ code }) => `closed ${code}`)
        ws.send(Buffer.from('hello'))
        const echoed = once(ws, 'message').then(([m]) => (m as Buffer).toString())
        expect(await Promise.race([echoed, ended])).toBe('hello')
        ws.close()
      }
    }
    async function refusedOnBoth(): Promise<void> {
      for (const daemon of daemons) {
        expect(await connectAndClose(daemon.url)).toMatchObject({ code: 4401 })
      }
    }

    await echoesOnBoth()
    const revoked = await runGangway(d, ['revoke', ...redisArgs])
    expect(revoked.stdout).toEqual([
      `revoked token ${print} (for 604800 s); 2 subscriber(s) notified`,
    ])
    await refusedOnBoth()

    const undone = await runGangway(d, ['revoke', '--undo', ...redisArgs])
    expect(undone.code).toBe(0)
    expect(undone.stdout).toEqual([`revocation of token ${print} undone; 2 subscriber(s) notified`])
    for (const { proc } of daemons) {
      await proc.waitForLog(
        (r) => r.msg.startsWith('token revocation undone') && r['token'] === print,
      )
    }
    await echoesOnBoth()

    const again = await runGangway(d, ['revoke', '--undo', ...redisArgs])
    expect(again.code).toBe(0)
    expect(again.stdout[0]).toMatch(/^token [0-9a-f]{8} was not revoked .*nothing to undo$/)

    // The admin API: revoke on one node, undo on the other.
    const headers = { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' }
    const body = JSON.stringify({ fingerprint: print })
    const post = await fetch(daemons[0]!.admin, { method: 'POST', headers, body })
    expect(post.status).toBe(200)
    await refusedOnBoth()
    const undo = await fetch(daemons[1]!.admin, { method: 'DELETE', headers, body })
    expect(await undo.json()).toEqual({ unrevoked: print, wasRevoked: true, notified: 2 })
    await echoesOnBoth()
    const unauthorized = await fetch(daemons[1]!.admin, { method: 'DELETE', body })
    expect(unauthorized.status).toBe(401)
    const bad = await fetch(daemons[1]!.admin, {
      method: 'DELETE',
      headers,
      body: JSON.stringify({ fingerprint: print, ttl: 5 }),
    })
    expect(bad.status).toBe(400)

    for (const { proc } of daemons) expect(proc.stdout.join('\n')).not.toContain(TOKEN)
    // The audit line names who undid it (the admin token's fingerprint and the client), never a token.
    const audit = await daemons[1]!.proc.waitForLog(
      (r) => r.msg === 'token revocation undone by admin API',
    )
    expect(audit).toMatchObject({ unrevoked: print, admin: fingerprint(ADMIN_TOKEN) })
    expect(String(audit['client'])).toMatch(/^127\.0\.0\.1/)
  })
})
