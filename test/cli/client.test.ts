import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget, memoryLogger } from '../helpers/tunnel.js'
import { startAccessTunnel } from '../helpers/access.js'
import { startPostgres, startRedis } from '../helpers/containers.js'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseRoutes } from '../../src/config/routes.js'
import { portOf, runStdioClient, spawnGangway } from './gangway-process.js'
import { makeCert } from '../helpers/certs.js'

const d = createDisposer()
afterEach(() => d.run())

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

function stdioClient(args: string[], input: Buffer | string) {
  return runStdioClient(d, args, input)
}

describe('gangway client --stdio', () => {
  it('relays a checksummed transfer both ways; closing stdin half-closes, and the full answer still arrives', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const input = randomBytes(8 * 1024 * 1024)
    const result = await stdioClient(['--url', server.url()], input)
    expect(result.stderr).toEqual([])
    expect(result.code).toBe(0)
    expect(result.stdout.length).toBe(input.length)
    expect(sha(result.stdout)).toBe(sha(input))
  })

  it('a rejected token: one line naming 4401 and what to do, exit 1', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const routes = parseRoutes(
      { lab: { target: `127.0.0.1:${echo.port}`, tokens: ['the-right-token-1234'] } },
      'routes',
    )
    const { url } = await startAccessTunnel(d, { routes }, memoryLogger())
    const result = await stdioClient(['--url', url, '--token', 'wrong'], Buffer.from('x'))
    expect(result.code).toBe(1)
    expect(result.stderr).toEqual(['gangway client: token rejected (4401): check the token'])
    const ok = await stdioClient(
      ['--url', url, '--token', 'the-right-token-1234'],
      Buffer.from('hello'),
    )
    expect(ok.stdout.toString()).toBe('hello')
    expect(ok.code).toBe(0)
  })

  it('a refused target: one line naming 4502, exit 1', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const result = await stdioClient(['--url', server.url()], Buffer.from('x'))
    expect(result.code).toBe(1)
    expect(result.stderr).toEqual([
      'gangway client: target refused (4502): nothing listens at the target behind the gateway',
    ])
  })

  it('a gateway that is not there: one line, exit 1', async () => {
    const port = await freePort()
    const result = await stdioClient(['--url', `ws://127.0.0.1:${port}/`], Buffer.from('x'))
    expect(result.code).toBe(1)
    expect(result.stderr).toEqual([
      `gangway client: cannot reach the gateway at ws://127.0.0.1:${port}/ (ECONNREFUSED)`,
    ])
  })
})

describe('gangway client over wss:', () => {
  it('trusts the gateway with --ca, explains an untrusted certificate, and --insecure skips the check', async () => {
    const dir = await tempDir(d, 'gangway-client-tls-')
    const cert = await makeCert(dir, 'gateway')
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port), {
      tlsCert: cert.cert,
      tlsKey: cert.key,
    })
    expect(server.url()).toMatch(/^wss:/)
    const trusted = await stdioClient(
      ['--url', server.url(), '--ca', cert.cert],
      Buffer.from('over tls'),
    )
    expect(trusted).toMatchObject({ code: 0, stderr: [] })
    expect(trusted.stdout.toString()).toBe('over tls')
    const untrusted = await stdioClient(['--url', server.url()], Buffer.from('x'))
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr).toHaveLength(1)
    expect(untrusted.stderr[0]).toMatch(
      /^gangway client: (TLS: .*\(trust its CA with --ca FILE, or --insecure in a lab\)|cannot reach the gateway)/,
    )
    const insecure = await stdioClient(['--url', server.url(), '--insecure'], Buffer.from('lab'))
    expect(insecure.stdout.toString()).toBe('lab')
  })
})

/** `gangway client --listen 0` in front of `url`; resolves once it logs its (loopback) address. */
async function startClientListener(url: string) {
  const proc = spawnGangway(d, ['client', '--log-format', 'json', '--url', url, '--listen', '0'])
  const listening = await proc.waitForLog((r) => r.msg === 'client listening')
  return { proc, listening }
}

describe('gangway client --listen', () => {
  it('redis-cli pipes 10,000 commands to a real Redis through client → daemon', async () => {
    const redis = await startRedis()
    d.add(() => redis.stop())
    const server = await startTunnel(d, tcpTarget(redis.port, redis.host))
    const { proc, listening } = await startClientListener(server.url())
    expect(listening['listen']).toMatch(/^127\.0\.0\.1:\d+$/) // a bare port is loopback only
    const commands =
      Array.from({ length: 10_000 }, (_, i) => `SET key:${i} value-${i}\r\n`).join('') +
      'DBSIZE\r\n'
    const cli = spawn(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(portOf(listening['listen'])), '--pipe'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    )
    d.add(() => cli.kill('SIGKILL'))
    let out = ''
    cli.stdout.on('data', (c: Buffer) => (out += c.toString()))
    cli.stdin.end(commands)
    const [code] = (await once(cli, 'close')) as [number]
    expect(code).toBe(0)
    expect(out).toMatch(/errors: 0, replies: 10001/)
    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
  })

  it('psql copies 50 MB into Postgres and back out through client → daemon, byte for byte', async () => {
    const pg = await startPostgres()
    d.add(() => pg.stop())
    const server = await startTunnel(d, tcpTarget(pg.port, pg.host))
    const { proc, listening } = await startClientListener(server.url())
    const port = portOf(listening['listen'])
    const dir = await tempDir(d, 'gangway-psql-')
    // ~50 MB of CSV: an id and a random hex payload per row.
    const rows: string[] = []
    for (let i = 0; i < 210_000; i++) rows.push(`${i},${randomBytes(120).toString('hex')}`)
    const csv = rows.join('\n') + '\n'
    expect(csv.length).toBeGreaterThan(50_000_000)
    await writeFile(join(dir, 'in.csv'), csv)
    const psql = async (command: string): Promise<string> => {
      const child = spawn(
        'psql',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(port),
          '-U',
          'test',
          '-d',
          'test',
          '-v',
          'ON_ERROR_STOP=1',
          '-c',
          command,
        ],
        {
          env: { ...process.env, PGPASSWORD: 'test' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      d.add(() => child.kill('SIGKILL'))
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      child.stderr.on('data', (c: Buffer) => (out += c.toString()))
      const [code] = (await once(child, 'close')) as [number]
      expect(code, out).toBe(0)
      return out
    }
    await psql('CREATE TABLE blobs (id int PRIMARY KEY, payload text)')
    expect(await psql(`\\copy blobs FROM '${join(dir, 'in.csv')}' WITH (FORMAT csv)`)).toMatch(
      /COPY 210000/,
    )
    await psql(
      `\\copy (SELECT * FROM blobs ORDER BY id) TO '${join(dir, 'out.csv')}' WITH (FORMAT csv)`,
    )
    expect(sha(await readFile(join(dir, 'out.csv')))).toBe(sha(Buffer.from(csv)))
    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
  })
})
