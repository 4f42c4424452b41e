/**
 * The daemon logs in to Redis for the client: a real `redis-server --requirepass` (and an ACL user), ioredis
 * through gangway/node given no password, and raw clients whose every received byte is scanned.
 */
import { once } from 'node:events'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type WebSocket from 'ws'
import { SignJWT } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'
import { createDisposer } from '../helpers/disposer.js'
import { daemonSurface, loginCount, startLoginDaemon } from '../helpers/login.js'
import { redisThroughTunnel } from '../helpers/redis-client.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const PASSWORD = 'redis-pw-Zq81-never-seen'
const JWT_SECRET = 'an-hmac-secret-that-is-long-enough-0123456789'

describe('redis login', () => {
  it('lets ioredis, given no password, use a requirepass Redis; the AUTH exchange stays hidden', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      PASSWORD,
    )
    const client = await redisThroughTunnel(d, daemon.url)
    expect(await client.set('k', 'v')).toBe('OK')
    expect(await client.get('k')).toBe('v')
    expect(await client.ping()).toBe('PONG')
    await client.quit()
    expect(await loginCount(daemon.metrics, 'redis', 'ok')).toBe(1)
    const line = await daemon.logger.waitFor('logged in to the target')
    expect(line.fields).toMatchObject({ protocol: 'redis' })

    // Without the daemon's login the same Redis wants a password: the test would pass for nothing otherwise.
    const direct = new Redis({
      port: redis.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
    })
    direct.on('error', () => {})
    d.add(() => direct.disconnect())
    await direct.connect()
    await expect(direct.get('k')).rejects.toThrow(/NOAUTH/)
  })

  it('logs in as an ACL user', async () => {
    const acl = ['app', 'on', `>${PASSWORD}`, '~*', '&*', '+@all']
    const redis = await startRedisServer(d, ['--user', ...acl, '--user', 'default', 'off'])
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis', user: 'app' },
      PASSWORD,
    )
    const client = await redisThroughTunnel(d, daemon.url)
    expect(await client.call('ACL', 'WHOAMI')).toBe('app')
  })

  it('the client sees exactly what it asked for: the first byte it receives answers its own command', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      PASSWORD,
    )
    const received = collector()
    const ws = await openWs(d, daemon.url, { beforeOpen: received.attach })
    ws.send(Buffer.from('PING\r\n'))
    await received.until((text) => text.includes('\r\n'))
    expect(received.text()).toBe('+PONG\r\n')
    // A client whose first command is HELLO 3 gets RESP3 on the authenticated connection.
    ws.send(Buffer.from('*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n'))
    await received.until((text) => text.includes('proto'))
    expect(received.text().slice('+PONG\r\n'.length)).toMatch(/^%/)
    ws.close()
    await closed(ws)
  })

  it('refuses with 4502 "target login failed" on a wrong password; the log says why, never the password', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      'wrong-pw-Xk2',
    )
    const answer = await connectAndClose(daemon.url)
    expect(answer).toMatchObject({ code: 4502, reason: 'target login failed' })
    const refused = await daemon.logger.waitFor('tunnel refused')
    expect(String(refused.fields['reason'])).toMatch(
      /redis login to 127\.0\.0\.1:\d+ failed: redis: WRONGPASS/,
    )
    expect(await loginCount(daemon.metrics, 'redis', 'refused')).toBe(1)
    expect(await daemonSurface(daemon)).not.toContain('wrong-pw-Xk2')
  })

  it('refuses with 4504 when the target never answers the login, within the connect timeout', async () => {
    const accepted: Socket[] = []
    const silent = createServer((socket) => void accepted.push(socket)) // accepts, says nothing
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    d.add(() => new Promise((r) => silent.close(r)))
    d.add(() => accepted.forEach((s) => s.destroy()))
    const port = (silent.address() as { port: number }).port
    const daemon = await startLoginDaemon(d, `127.0.0.1:${port}`, { protocol: 'redis' }, PASSWORD, {
      connectTimeoutMs: 300,
    })
    const answer = await connectAndClose(daemon.url)
    expect(answer).toMatchObject({ code: 4504, reason: 'target login timed out' })
    expect(await loginCount(daemon.metrics, 'redis', 'timeout')).toBe(1)
  })

  it('keeps the password out of the client traffic, logs, metrics, admin views and recordings', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const probe = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      PASSWORD,
    )
    const recordDir = join(probe.dir, 'rec')
    await mkdir(recordDir)
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      PASSWORD,
      { record: `${recordDir}/` },
    )
    const received = collector()
    const ws = await openWs(d, daemon.url, {
      protocols: ['gangway.v1'],
      beforeOpen: received.attach,
    })
    ws.send(Buffer.from('*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n'))
    await received.until((text) => text.includes('$5\r\nhello\r\n'))
    // While it is open: the admin views and metrics.
    const during = await daemonSurface(daemon)
    ws.close()
    await closed(ws)
    await daemon.logger.waitFor('tunnel closed')
    expect(await readdir(recordDir)).toHaveLength(1)
    const after = await daemonSurface(daemon, recordDir)
    for (const text of [during, after, received.text()]) {
      expect(text).not.toContain(PASSWORD)
    }
    // The recording starts after the login: no AUTH in it.
    expect(after).not.toContain('AUTH')
  })
})

describe('tokens and logins', () => {
  it('a JWT naming a route with a login gets the login; the token carries no password', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const dir = await tempDir(d, 'gangway-login-jwt-')
    const keyFile = join(dir, 'jwt.key')
    await writeFile(keyFile, JWT_SECRET)
    // A login claim in the token is not a thing: it is ignored, the route's login is used.
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      PASSWORD,
      { jwtKey: keyFile },
    )
    const token = await new SignJWT({ target: 'svc', login: { passwordFile: '/etc/shadow' } })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('2m')
      .sign(Buffer.from(JWT_SECRET))
    const client = await redisThroughTunnel(d, daemon.url.replace(/\?.*$/, `?token=${token}`))
    expect(await client.ping()).toBe('PONG')
    expect(await loginCount(daemon.metrics, 'redis', 'ok')).toBe(1)
  })
})

describe('password files', () => {
  it('re-reads a changed password file: the next tunnel logs in with the new password', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${redis.port}`,
      { protocol: 'redis' },
      'old-wrong-pw',
    )
    expect(await connectAndClose(daemon.url)).toMatchObject({ code: 4502 })
    await writeFile(daemon.passwordFile, `${PASSWORD}\n`)
    await daemon.logger.waitFor('password file reloaded')
    const client = await redisThroughTunnel(d, daemon.url)
    expect(await client.ping()).toBe('PONG')
  })
})

/** Every message a WebSocket receives (text and binary), as latin1 text, with a wait on its content. */
function collector() {
  const chunks: Buffer[] = []
  let wake: (() => void) | undefined
  const text = (): string => Buffer.concat(chunks).toString('latin1')
  return {
    attach: (ws: WebSocket): void => {
      ws.on('message', (m: Buffer) => {
        chunks.push(Buffer.from(m))
        wake?.()
      })
    },
    text,
    async until(test: (text: string) => boolean): Promise<void> {
      while (!test(text())) await new Promise<void>((resolve) => (wake = resolve))
    },
  }
}
