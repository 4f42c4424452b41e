/**
 * What an operator greps for, on a real daemon (`bin/gangway.js`) with routes, the admin API and a real
 * Redis (`--state-redis`): every line names the node; `tunnel closed` carries the token fingerprint the open
 * line has; 4502/4503 refusals carry route and token; admin close and revoke leave an audit line (admin
 * token fingerprint and client address); no secret on any line.
 */
import { writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/log.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { portOf, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const ADMIN_TOKEN = 'ops-logs-admin-token-0123456789'
const T_ECHO = 'ops-logs-echo-token-abcdef'
const T_REFUSED = 'ops-logs-refused-token-abcdef'
const T_GONE = 'ops-logs-gone-token-abcdef'
const SECRETS = [ADMIN_TOKEN, T_ECHO, T_REFUSED, T_GONE]

async function startDaemon(extra: string[]) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const closedPort = await freePort()
  const dir = await tempDir(d, 'gangway-ops-logs-')
  await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
  await writeFile(
    join(dir, 'gangway.yaml'),
    [
      'routes:',
      '  echo:',
      `    target: 127.0.0.1:${echo.port}`,
      `    tokens: [${T_ECHO}]`,
      '  refused:',
      `    target: 127.0.0.1:${closedPort}`,
      `    tokens: [${T_REFUSED}]`,
      '  gone:',
      `    target: unix:${join(dir, 'no-such.sock')}`,
      `    tokens: [${T_GONE}]`,
      '',
    ].join('\n'),
  )
  const proc = spawnGangway(d, [
    '--log-format=json',
    `--config=${join(dir, 'gangway.yaml')}`,
    '--admin=127.0.0.1:0',
    `--admin-token-file=${join(dir, 'admin-token')}`,
    ...extra,
    '127.0.0.1:0',
  ])
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${admin}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, 'Content-Type': 'application/json' },
    })
  return { proc, listening, url: `ws://127.0.0.1:${portOf(listening['listen'])}/`, api }
}

describe('log lines an operator can use', () => {
  it('names the node and the token on close, route and token on 4502/4503, and audits admin actions', async () => {
    const redis = await startRedisServer(d)
    await redis.start()
    const { proc, url, api } = await startDaemon([
      '--node-id=edge-1.eu',
      `--state-redis=${redis.url}`,
    ])

    // A tunnel that opens and closes: both lines carry the fingerprint.
    const ws = await openWs(d, `${url}?token=${T_ECHO}`)
    ws.send(Buffer.from('ping'))
    await new Promise((resolve) => ws.once('message', resolve))
    ws.close()
    const closedLine = await proc.waitForLog((r) => r.msg === 'tunnel closed')
    const openLine = await proc.waitForLog((r) => r.msg === 'tunnel open')
    expect(openLine['token']).toBe(fingerprint(T_ECHO))
    expect(closedLine).toMatchObject({ token: fingerprint(T_ECHO), conn: openLine['conn'] })

    // Failed dials name the route and the token that were admitted.
    expect((await connectAndClose(`${url}?token=${T_REFUSED}`)).code).toBe(4502)
    expect((await connectAndClose(`${url}?token=${T_GONE}`)).code).toBe(4503)
    const refused = await proc.waitForLog((r) => r.msg === 'tunnel refused' && r['code'] === 4502)
    expect(refused).toMatchObject({ route: 'route:refused', token: fingerprint(T_REFUSED) })
    const gone = await proc.waitForLog((r) => r.msg === 'tunnel refused' && r['code'] === 4503)
    expect(gone).toMatchObject({ route: 'route:gone', token: fingerprint(T_GONE) })

    // An operator closes a tunnel, then revokes a token: who did it is logged.
    const victim = await openWs(d, `${url}?token=${T_ECHO}`)
    const victimClosed = closed(victim)
    const opened = await proc.waitForLog(
      (r) => r.msg === 'tunnel open' && r['conn'] !== openLine['conn'],
    )
    expect(
      (await api(`/api/tunnels/${String(opened['conn'])}/close`, { method: 'POST' })).status,
    ).toBe(202)
    expect((await victimClosed).code).toBe(4410)
    const audit = await proc.waitForLog((r) => r.msg === 'tunnel closed by admin API')
    expect(audit).toMatchObject({ conn: opened['conn'], admin: fingerprint(ADMIN_TOKEN) })
    expect(audit['client']).toMatch(/^127\.0\.0\.1:\d+$/)
    const revoke = await api('/api/revoke', {
      method: 'POST',
      body: JSON.stringify({ token: T_REFUSED, ttl: 60 }),
    })
    expect(revoke.status).toBe(200)
    const revoked = await proc.waitForLog((r) => r.msg === 'token revoked by admin API')
    expect(revoked).toMatchObject({
      revoked: fingerprint(T_REFUSED),
      admin: fingerprint(ADMIN_TOKEN),
    })
    expect(revoked['client']).toMatch(/^127\.0\.0\.1:\d+$/)

    // Every line names the node; no line carries a secret.
    const records = proc.stdout.map((line) => JSON.parse(line) as LogRecord)
    expect(records.length).toBeGreaterThan(8)
    for (const record of records) expect(record['node']).toBe('edge-1.eu')
    for (const line of [...proc.stdout, ...proc.stderr]) {
      for (const secret of SECRETS) expect(line).not.toContain(secret)
    }
  })

  it('uses the host name as node id by default, and refuses a bad --node-id with one line', async () => {
    const { listening } = await startDaemon([])
    expect(listening['node']).toBe(hostname())
    const bad = await runGangway(d, ['--node-id', 'two words', '127.0.0.1:0', '127.0.0.1:9'])
    expect(bad.code).toBe(2)
    expect(bad.stderr.join('\n')).toMatch(/--node-id: expected 1 to 63 letters/)
  })
})
