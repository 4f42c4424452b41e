import { afterEach, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { startAccessTunnel } from '../helpers/access.js'
import { parseRoutes } from '../../src/config/routes.js'
import { runGangway } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())
const run = promisify(execFile)

/** A daemon whose JWT resolver uses `keyFile`, with a route `lab` to an echo server. */
async function jwtDaemon(keyFile: string, singleUse = false) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const routes = parseRoutes({ lab: { target: `127.0.0.1:${echo.port}` } }, 'routes')
  return startAccessTunnel(d, { routes, jwtKey: keyFile, jwtSingleUse: singleUse }, memoryLogger())
}

async function mint(args: string[]): Promise<string> {
  const result = await runGangway(d, ['token', ...args])
  expect(result.stderr).toEqual([])
  expect(result.code).toBe(0)
  expect(result.stdout).toHaveLength(1) // only the token, for scripts
  return result.stdout[0]!
}

/** Opens a tunnel with the token; resolves with the echo of "ping" or the close code. */
async function tryToken(url: string, token: string): Promise<string | number> {
  const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()))
  const first = await Promise.race([opened.then(() => 'open' as const), closed])
  if (first !== 'open') return first
  ws.send(Buffer.from('ping'))
  const [m] = (await Promise.race([once(ws, 'message'), closed.then((c) => [c])])) as [
    Buffer | number,
  ]
  return typeof m === 'number' ? m : m.toString()
}

describe('gangway token', () => {
  it('mints an HS256 token from a secret file that opens the named route', async () => {
    const dir = await tempDir(d, 'gangway-token-')
    const key = join(dir, 'secret')
    await writeFile(key, randomBytes(48).toString('base64') + '\n')
    const { url } = await jwtDaemon(key)
    const token = await mint(['--key', key, '--route', 'lab', '--ttl', '60'])
    expect(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())).toMatchObject({
      alg: 'HS256',
    })
    expect(await tryToken(url, token)).toBe('ping')
    expect(await tryToken(url, token.slice(0, -2) + 'xx')).toBe(4401) // a forged signature
  })

  it('mints an ES256 token from a PEM private key; the daemon verifies it with the same file', async () => {
    const dir = await tempDir(d, 'gangway-token-')
    const key = join(dir, 'ec.pem')
    await run('openssl', [
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      key,
    ])
    const { url } = await jwtDaemon(key)
    const token = await mint(['--key', key, '--route', 'lab', '--max-bytes', '4096'])
    const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as {
      alg: string
    }
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      number
    >
    expect(header.alg).toBe('ES256')
    expect(payload['exp']! - payload['iat']!).toBe(300) // the default lifetime
    expect(payload['maxBytes']).toBe(4096)
    expect(await tryToken(url, token)).toBe('ping')
  })

  it('--single-use: the daemon refuses the same token a second time (4401)', async () => {
    const dir = await tempDir(d, 'gangway-token-')
    const key = join(dir, 'secret')
    await writeFile(key, randomBytes(48).toString('hex'))
    const { url } = await jwtDaemon(key, true)
    const token = await mint(['--key', key, '--route', 'lab', '--single-use'])
    expect(await tryToken(url, token)).toBe('ping')
    expect(await tryToken(url, token)).toBe(4401)
  })

  it.each([
    [['--route', 'lab'], /^gangway: token: --key is required/],
    [
      ['--key', '/etc/hostname', '--route', 'lab', '--target', '127.0.0.1:1'],
      /exactly one of --target and --route/,
    ],
    [['--key', '/etc/hostname', '--route', 'lab'], /an HMAC secret needs at least 32 bytes/],
    [['--key', '/nonexistent', '--route', 'lab'], /--key: cannot read \/nonexistent \(ENOENT\)/],
    [['--key', '/etc/hostname', '--target', 'nohost'], /--target/],
  ])('%j: exit 2 and one line', async (args, message) => {
    const result = await runGangway(d, ['token', ...args])
    expect(result.code).toBe(2)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(message)
  })
})
