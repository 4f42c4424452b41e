/**
 * The daemon logs in to PostgreSQL for the client: a real PostgreSQL 15 with scram-sha-256 in pg_hba
 * (container built by scripts/test-env.sh), `pg` through gangway/node and `psql` through `gangway client`,
 * neither given a password; user and database checks; a wrong password is a 4502 refusal.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import pg from 'pg'
import { Client as NeonClient } from '@neondatabase/serverless'
import { WebSocket } from 'ws'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startService, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { daemonSurface, loginCount, ROUTE_TOKEN, startLoginDaemon } from '../helpers/login.js'
import { NodeWebSocket } from '../helpers/shim.js'
import { connectAndClose } from '../helpers/ws.js'
import { createNetSocket } from '../../web/node/index.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const PASSWORD = 'pg-Secret-7hq2-not-for-clients'

let postgres: ContainerService
beforeAll(async () => {
  postgres = await startService({
    image: 'localhost/gangway-test-postgres:15',
    port: 5432,
    ready: /database system is ready to accept connections/,
    environment: { POSTGRES_USER: 'app', POSTGRES_PASSWORD: PASSWORD, POSTGRES_DB: 'appdb' },
  })
})
afterAll(() => postgres?.stop())

const LOGIN = { protocol: 'postgres', user: 'app', database: 'appdb' }

function client(url: string, options: pg.ClientConfig = {}) {
  const c = new pg.Client({
    user: 'app',
    database: 'appdb',
    stream: () => createNetSocket({ url, WebSocket: NodeWebSocket, address: '' }),
    ...options,
  })
  c.on('error', () => {})
  d.add(() => c.end().catch(() => {}))
  return c
}

describe('postgres login', () => {
  it('lets pg, given no password, query a scram-sha-256 PostgreSQL', async () => {
    const daemon = await startLoginDaemon(d, `${postgres.host}:${postgres.port}`, LOGIN, PASSWORD)
    const c = client(daemon.url)
    await c.connect()
    const { rows } = await c.query<{ u: string; db: string; n: string }>(
      'select current_user as u, current_database() as db, sum(n)::text as n from generate_series(1, 1000) n',
    )
    expect(rows[0]).toEqual({ u: 'app', db: 'appdb', n: '500500' })
    await c.end()
    expect(await loginCount(daemon.metrics, 'postgres', 'ok')).toBe(1)
    const line = await daemon.logger.waitFor('logged in to the target')
    expect(line.fields).toMatchObject({ protocol: 'postgres', auth: 'scram-sha-256', user: 'app' })
    expect(await daemonSurface(daemon)).not.toContain(PASSWORD)

    // The same server refuses the same client without the daemon's login: the test proves something.
    const direct = new pg.Client({
      host: postgres.host,
      port: postgres.port,
      user: 'app',
      database: 'appdb',
    })
    direct.on('error', () => {})
    await expect(direct.connect()).rejects.toThrow(/password/)
    await direct.end().catch(() => {})
  })

  it("lets Neon's serverless driver, given no password, query it", async () => {
    const daemon = await startLoginDaemon(d, `${postgres.host}:${postgres.port}`, LOGIN, PASSWORD)
    const neon = new NeonClient({ connectionString: 'postgres://app@db.example/appdb' })
    neon.neonConfig.webSocketConstructor = WebSocket
    neon.neonConfig.wsProxy = () => daemon.url.replace(/^ws:\/\//, '')
    neon.neonConfig.useSecureWebSocket = false
    neon.neonConfig.pipelineConnect = false
    neon.neonConfig.forceDisablePgSSL = true
    neon.on('error', () => {})
    let ended = false
    // This driver's end() never settles after a failed connection: bound it.
    d.add(() =>
      ended
        ? undefined
        : Promise.race([
            neon.end().catch(() => {}),
            new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref()),
          ]),
    )
    await neon.connect()
    const { rows } = await neon.query<{ u: string; n: string }>(
      'select current_user as u, sum(n)::text as n from generate_series(1, 100) n',
    )
    expect(rows[0]).toEqual({ u: 'app', n: '5050' })
    ended = true
    await neon.end()
    expect(await loginCount(daemon.metrics, 'postgres', 'ok')).toBe(1)
    expect(await daemonSurface(daemon)).not.toContain(PASSWORD)
  })

  it('refuses a client asking for another user or database with a FATAL error, then 4403', async () => {
    const daemon = await startLoginDaemon(d, `${postgres.host}:${postgres.port}`, LOGIN, PASSWORD)
    await expect(client(daemon.url, { user: 'postgres' }).connect()).rejects.toThrow(
      /this route logs in as user "app", not "postgres"/,
    )
    await expect(client(daemon.url, { database: 'postgres' }).connect()).rejects.toThrow(
      /this route connects to database "appdb", not "postgres"/,
    )
  })

  it('refuses with 4502 on a wrong password, the server’s words in the log', async () => {
    const daemon = await startLoginDaemon(
      d,
      `${postgres.host}:${postgres.port}`,
      LOGIN,
      'wrong-pg-pw',
    )
    expect(await connectAndClose(daemon.url)).toMatchObject({
      code: 4502,
      reason: 'target login failed',
    })
    const refused = await daemon.logger.waitFor('tunnel refused')
    expect(String(refused.fields['reason'])).toMatch(
      /postgres: FATAL 28P01 password authentication failed for user "app"/,
    )
    expect(await loginCount(daemon.metrics, 'postgres', 'refused')).toBe(1)
    expect(await daemonSurface(daemon)).not.toContain('wrong-pg-pw')
  })

  it('lets psql through `gangway client`, with no password, query it (SSLRequest answered N)', async () => {
    const daemon = await startLoginDaemon(d, `${postgres.host}:${postgres.port}`, LOGIN, PASSWORD)
    const url = daemon.url.replace(/\?.*$/, '')
    const proc = spawnGangway(d, [
      'client',
      '--log-format',
      'json',
      '--url',
      url,
      '--token',
      ROUTE_TOKEN,
      '--listen',
      '0',
    ])
    const listening = await proc.waitForLog((r) => r.msg === 'client listening')
    const env = { ...process.env }
    delete env['PGPASSWORD']
    const child = spawn(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(portOf(listening['listen'])),
        '-U',
        'app',
        '-d',
        'appdb',
        '-w',
        '-At',
        '-c',
        'select 6 * 7',
      ],
      {
        env: { ...env, PGSSLMODE: 'prefer', PGPASSFILE: '/nonexistent' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    d.add(() => child.kill('SIGKILL'))
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const [code] = (await once(child, 'close')) as [number]
    expect(out.trim()).toBe('42')
    expect(code).toBe(0)
  })
})
