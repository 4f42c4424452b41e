/**
 * `gangway check` (like `nginx -t`): everything the daemon would load, validated without listening; exit 0
 * with one summary line, or 2 with the one line that names the problem.
 */
import { createServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, expect, it } from 'vitest'
import { makeCert, type CertFiles } from '../helpers/certs.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { runGangway } from './gangway-process.js'

const d = createDisposer()
const setup = createDisposer()
afterEach(() => d.run())

let dir: string
let one: CertFiles
let two: CertFiles

beforeAll(async () => {
  dir = await tempDir(setup, 'gangway-check-')
  one = await makeCert(dir, 'localhost', 'one')
  two = await makeCert(dir, 'localhost', 'two')
  await writeFile(join(dir, 'tokens'), 'vnc: 127.0.0.1:5900\n')
  await writeFile(join(dir, 'admin-token'), 'an-admin-token-long-enough\n')
  await writeFile(join(dir, 'jwt.key'), 'an-hmac-secret-that-is-long-enough-0123456789')
  return () => setup.run()
})

/** A complete config; `extra` lines override or add keys. */
async function config(extra = '', port = 6080): Promise<string> {
  const file = join(dir, `gangway-${Math.random().toString(36).slice(2)}.yaml`)
  await writeFile(
    file,
    [
      `listen: 127.0.0.1:${port}`,
      `cert: ${one.cert}`,
      `key: ${one.key}`,
      `tokenFile: ${join(dir, 'tokens')}`,
      `jwtKey: ${join(dir, 'jwt.key')}`,
      'admin: 127.0.0.1:9090',
      `adminTokenFile: ${join(dir, 'admin-token')}`,
      'routes:',
      '  lab: { target: 10.0.0.5:5900, tokens: [a-route-token-0123456789] }',
      'allow: [10.0.0.0/8:5900-5999]',
      extra,
    ].join('\n'),
  )
  return file
}

it('a good config: exit 0 and one summary line, without listening (its port may be taken)', async () => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  d.add(() => new Promise<void>((r) => busy.close(() => r())))
  const file = await config('', (busy.address() as AddressInfo).port)
  const result = await runGangway(d, ['check', '--config', file])
  expect(result.stderr).toEqual([])
  expect(result.code).toBe(0)
  expect(result.stdout).toEqual([
    expect.stringMatching(
      new RegExp(
        `^gangway check: configuration ${file} OK: listen 127\\.0\\.0\\.1:\\d+; 1 route\\(s\\); token file, signed tokens; TLS; admin 127\\.0\\.0\\.1:9090$`,
      ),
    ),
  ])
})

it.each<[string, string, RegExp]>([
  ['an unknown key', 'heartbeet: 5', /unknown key "heartbeet"/],
  [
    'a token file that does not exist',
    `tokenFile: ${join('/nonexistent', 'tokens')}`,
    /token file \/nonexistent\/tokens/,
  ],
  [
    'a key that does not match the certificate',
    `key: ${'TWO_KEY'}`,
    /the key does not match the certificate/,
  ],
  [
    'a certificate file that is missing',
    'cert: /nonexistent/cert.pem',
    /cannot read TLS certificate \/nonexistent\/cert\.pem/,
  ],
  ['a short admin token', `adminTokenFile: ${'SHORT_TOKEN'}`, /at least 16 characters/],
  ['a route without a port', 'routes: { lab: { target: 10.0.0.5 } }', /routes.*lab.*(port|target)/],
  ['a bad policy rule', 'allow: [not a rule]', /allow/],
  ['a short JWT secret', `jwtKey: ${'SHORT_JWT'}`, /at least 32 bytes/],
  [
    'a record prefix in a missing directory',
    'record: /nonexistent/dir/rec',
    /--record: cannot record into \/nonexistent\/dir/,
  ],
])('%s: exit 2 and one line naming it', async (_name, extra, problem) => {
  await writeFile(join(dir, 'short-token'), 'short\n')
  await writeFile(join(dir, 'short-jwt'), 'short')
  const line = extra
    .replace('TWO_KEY', two.key)
    .replace('SHORT_TOKEN', join(dir, 'short-token'))
    .replace('SHORT_JWT', join(dir, 'short-jwt'))
  const file = await config(line)
  // A YAML mapping may not repeat a key: replace the line the extra one overrides.
  const key = line.split(':')[0]!
  const { readFile } = await import('node:fs/promises')
  const text = (await readFile(file, 'utf8'))
    .split('\n')
    .filter(
      (l, i, all) =>
        !(l.startsWith(`${key}:`) && i < all.length - 1) &&
        !(key === 'routes' && l.startsWith('  lab:')),
    )
    .join('\n')
  await writeFile(file, text)
  const result = await runGangway(d, ['check', '--config', file])
  expect(result.code).toBe(2)
  expect(result.stdout).toEqual([])
  expect(result.stderr).toHaveLength(1)
  expect(result.stderr[0]).toMatch(/^gangway: /)
  expect(result.stderr[0]).toMatch(problem)
})

it("reports a renamed key (0.1's idleTimeout) as a warning on stderr, still exit 0", async () => {
  const file = await config('idleTimeout: 60')
  const result = await runGangway(d, ['check', '--config', file])
  expect(result.code).toBe(0)
  expect(result.stderr).toEqual([
    expect.stringMatching(/warning: .*idleTimeout is now called tunnelIdleTimeout/),
  ])
})

it('checks flags and positionals too, as the daemon reads them', async () => {
  const ok = await runGangway(d, ['check', '127.0.0.1:0', 'localhost:5900'])
  expect(ok.code).toBe(0)
  expect(ok.stdout[0]).toMatch(/OK: listen 127\.0\.0\.1:0; target localhost:5900$/)
  const bad = await runGangway(d, ['check', '127.0.0.1:0'])
  expect(bad.code).toBe(2)
  expect(bad.stderr).toEqual([expect.stringMatching(/missing TARGET/)])
})
