/**
 * Routes with a `login`, as the CLI reads them: a password file that cannot be read stops the daemon with
 * exit 2 naming the route and the file; a password written in the config is refused; SIGHUP re-reads a
 * password file.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { tempDir } from '../helpers/tmp.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { portOf, runGangway, spawnGangway } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const PASSWORD = 'cli-redis-pw-31415'

function configText(target: string, login: string): string {
  return `listen: 127.0.0.1:0\nroutes:\n  cache:\n    target: ${target}\n    tokens: [a-long-route-token]\n    login: ${login}\n`
}

describe('gangway with login routes', () => {
  it('exits 2 naming the route and the file when the password file cannot be read', async () => {
    const dir = await tempDir(d, 'gangway-cli-login-')
    await writeFile(
      join(dir, 'gangway.yaml'),
      configText('127.0.0.1:6379', '{ protocol: redis, passwordFile: missing.pass }'),
    )
    const { code, stderr, stdout } = await runGangway(d, ['--config', 'gangway.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toEqual([
      `gangway: route "cache" login.passwordFile ${join(dir, 'missing.pass')}: cannot read it (ENOENT)`,
    ])
    expect(stdout).toEqual([])
  })

  it('exits 2 when a password is written in the config instead of a file', async () => {
    const dir = await tempDir(d, 'gangway-cli-login-')
    await writeFile(
      join(dir, 'gangway.yaml'),
      configText('127.0.0.1:6379', `{ protocol: redis, password: ${PASSWORD} }`),
    )
    const { code, stderr } = await runGangway(d, ['--config', 'gangway.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr.join('\n')).toMatch(
      /routes\.cache\.login: a password is never written in the config/,
    )
    expect(stderr.join('\n')).not.toContain(PASSWORD)
  })

  it('re-reads the password file on SIGHUP and logs in with the new password', async () => {
    const redis = await startRedisServer(d, ['--requirepass', PASSWORD])
    const dir = await tempDir(d, 'gangway-cli-login-')
    await writeFile(join(dir, 'redis.pass'), 'stale-password\n')
    await writeFile(
      join(dir, 'gangway.yaml'),
      configText(`127.0.0.1:${redis.port}`, '{ protocol: redis, passwordFile: redis.pass }'),
    )
    const proc = spawnGangway(d, ['--config', 'gangway.yaml', '--log-format', 'json'], { cwd: dir })
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const url = `ws://127.0.0.1:${portOf(listening['listen'])}/?token=a-long-route-token`
    expect(await connectAndClose(url)).toMatchObject({ code: 4502, reason: 'target login failed' })
    await writeFile(join(dir, 'redis.pass'), `${PASSWORD}\n`)
    proc.child.kill('SIGHUP')
    await proc.waitForLog((r) => r.msg === 'config reloaded')
    const ws = await openWs(d, url)
    ws.send('PING\r\n')
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('+PONG\r\n')
    expect(proc.stdout.join('\n')).not.toContain(PASSWORD)
  })
})
