/**
 * The target-policy attempt matrix (docs/auth.md, src/targets/policy.ts): targets a client names
 * (`?address=`) or a token carries (JWT `target` claim) are checked by the default policy (`--allow '*'`):
 * every loopback, private, link-local, metadata and internal IPv6 form, in every spelling, and names that
 * resolve there, is refused with 4403 before anything is dialled. Non-loopback addresses are only ever given
 * to the admission gate and the policy (no socket is opened for them); loopback forms go through a real
 * daemon while loopback listeners count accepts, which must stay at zero. The allowed counterparts work.
 */
import { createHmac } from 'node:crypto'
import { lookup } from 'node:dns/promises'
import { once } from 'node:events'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import net, { type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createAccessFromConfig } from '../../src/auth/from-config.js'
import type { Config } from '../../src/config/options.js'
import { TunnelError } from '../../src/errors.js'
import { createTargetPolicy } from '../../src/targets/policy.js'
import { daemonConfig, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'an-hmac-secret-that-is-long-enough-for-the-policy-matrix'
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')
function jwtFor(target: string): string {
  const input = `${b64({ alg: 'HS256' })}.${b64({ target, exp: Math.floor(Date.now() / 1000) + 60 })}`
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`
}

/** Denied hosts that are not loopback: given only to the gate and the policy, never dialled. */
const REMOTE_DENIED = [
  '10.0.0.1',
  '10.255.255.255',
  '172.16.0.1',
  '172.31.255.254',
  '192.168.0.1',
  '192.168.255.255',
  '169.254.169.254', // cloud metadata
  '169.254.0.1',
  '100.64.0.1',
  '[fe80::1]',
  '[fe80::1%lo]',
  '[febf::1]',
  '[fc00::1]',
  '[fd12:3456::1]',
  '[ff02::1]',
  '[64:ff9b::a00:1]', // NAT64 of 10.0.0.1
  // IPv4-mapped, IPv4-compatible and IPv4-translated forms
  '[::ffff:10.0.0.1]',
  '[::ffff:a00:1]',
  '[0:0:0:0:0:ffff:10.0.0.1]',
  '[::ffff:172.16.0.1]',
  '[::ffff:192.168.0.1]',
  '[::ffff:169.254.169.254]',
  '[::ffff:a9fe:a9fe]',
  '[::10.0.0.1]',
  '[::ffff:0:a00:1]',
]

/** Loopback and unspecified forms: safe to try through a daemon (only loopback listeners exist). */
const LOOPBACK_DENIED = [
  '127.0.0.1',
  '127.0.0.2',
  '127.1', // not an address to the parser: refused as such
  '0x7f.1', // a name to the parser; the system resolver makes it 127.0.0.1
  '0x7f000001',
  '2130706433',
  '017700000001',
  '0.0.0.0',
  '0',
  '[::1]',
  '[0:0:0:0:0:0:0:1]',
  '[::]',
  '[::ffff:127.0.0.1]',
  '[::ffff:7f00:1]',
  '[0:0:0:0:0:ffff:7f00:1]',
  '[::127.0.0.1]',
  '[::ffff:0:7f00:1]',
  '[::ffff:0.0.0.0]',
  'localhost',
  'LOCALHOST',
  'localhost.',
]

/** Names only the injected resolver knows, answering denied addresses (or a mix). */
const NAMES: Record<string, string[]> = {
  'metadata.test': ['169.254.169.254'],
  'private.test': ['10.1.2.3'],
  'mixed.test': ['203.0.113.5', '192.168.1.1'], // one public answer does not save it
  'mapped.test': ['::ffff:10.0.0.1'],
  'ula.test': ['fd00::1'],
  'v6loop.test': ['::1'],
}

describe('target policy attempt matrix: the gate and the policy (nothing is dialled)', () => {
  it('every denied form is refused with 4403, client-named or in a JWT; allowed counterparts pass', async () => {
    const dir = await tempDir(d, 'gangway-matrix-')
    await writeFile(join(dir, 'secret'), SECRET)
    const gate = async (overrides: Partial<Config>) => {
      const access = await createAccessFromConfig(
        daemonConfig({ allow: ['*'], maxAuthFailures: 0, ...overrides }),
      )
      d.add(() => access?.close())
      if (access === undefined) throw new Error('no access gate')
      return (url: string) => access.admit({ url, headers: {} } as never, '127.0.0.1')
    }
    const clientNamed = await gate({ clientTargets: true })
    const jwt = await gate({ jwtKey: join(dir, 'secret') })
    for (const host of [...REMOTE_DENIED, ...LOOPBACK_DENIED]) {
      const named = await clientNamed(`/?address=${encodeURIComponent(`${host}:80`)}`)
      expect(named.ok, host).toBe(false)
      if (!named.ok) {
        expect(named.error.closeCode, `${host}: ${named.error.message}`).toBe(4403)
      }
      const signed = await jwt(`/?token=${jwtFor(`${host}:80`)}`)
      expect(signed.ok, `jwt ${host}`).toBe(false)
      // A claim that is not an address at all (127.1) is an unusable token: 4401, also nothing dialled.
      if (!signed.ok) expect([4401, 4403], `jwt ${host}`).toContain(signed.error.closeCode)
    }
    for (const host of ['203.0.113.5', '[2001:db8::1]', '198.51.100.7']) {
      const named = await clientNamed(`/?address=${encodeURIComponent(`${host}:80`)}`)
      expect(named.ok, host).toBe(true)
      if (named.ok) named.release()
      const signed = await jwt(`/?token=${jwtFor(`${host}:80`)}`)
      expect(signed.ok, `jwt ${host}`).toBe(true)
      if (signed.ok) signed.release()
    }
  })

  it('names that resolve to denied addresses are refused; an exact name rule or an address rule lets them through', async () => {
    const resolver = (host: string) =>
      Promise.resolve(
        (NAMES[host] ?? ['203.0.113.9']).map((address) => ({
          address,
          family: net.isIP(address),
        })),
      )
    const wildcard = createTargetPolicy({ allow: ['*'], deny: [], lookup: resolver })
    for (const name of Object.keys(NAMES)) {
      const check = wildcard.check({ kind: 'tcp', host: name, port: 80 }, { timeoutMs: 1000 })
      await expect(check, name).rejects.toMatchObject({
        code: 'ERR_TARGET_DENIED',
        closeCode: 4403,
      })
    }
    await expect(
      wildcard.check({ kind: 'tcp', host: 'public.test', port: 80 }, { timeoutMs: 1000 }),
    ).resolves.toMatchObject({ addresses: [{ address: '203.0.113.9' }] })
    const named = createTargetPolicy({
      allow: ['private.test:80', '169.254.169.254/32:80'],
      deny: [],
      lookup: resolver,
    })
    for (const name of ['private.test', 'metadata.test']) {
      await expect(
        named.check({ kind: 'tcp', host: name, port: 80 }, { timeoutMs: 1000 }),
      ).resolves.toBeDefined()
      await expect(
        named.check({ kind: 'tcp', host: name, port: 81 }, { timeoutMs: 1000 }),
      ).rejects.toBeInstanceOf(TunnelError)
    }
  })
})

/** A listener on 127.0.0.1:port and [::1]:port (the same port) that counts what it accepts. */
async function loopbackListeners(): Promise<{ port: number; accepted: () => number }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    let count = 0
    const onConnection = (socket: net.Socket): void => {
      count++
      socket.on('error', () => {})
      socket.pipe(socket)
    }
    const v4 = net.createServer(onConnection).listen(0, '127.0.0.1')
    await once(v4, 'listening')
    const port = (v4.address() as AddressInfo).port
    const v6 = net.createServer(onConnection)
    const bound = await new Promise<boolean>((resolve) => {
      v6.once('error', () => resolve(false))
      v6.listen(port, '::1', () => resolve(true))
    })
    const closeAll = async () => {
      await new Promise((r) => v4.close(r))
      if (bound) await new Promise((r) => v6.close(r))
    }
    if (!bound) {
      await closeAll()
      continue
    }
    d.add(closeAll)
    return { port, accepted: () => count }
  }
  throw new Error('no port free on both 127.0.0.1 and ::1')
}

describe('target policy attempt matrix: loopback forms through a daemon', () => {
  it('each is refused with 4403 (4401 for an unusable JWT claim) and no listener accepts anything', async () => {
    const { port, accepted } = await loopbackListeners()
    const dir = await tempDir(d, 'gangway-matrix-')
    await writeFile(join(dir, 'secret'), SECRET)
    const { url } = await startAccessTunnel(
      d,
      { clientTargets: true, allow: ['*'], maxAuthFailures: 0 },
      memoryLogger(),
    )
    const jwt = await startAccessTunnel(
      d,
      { jwtKey: join(dir, 'secret'), allow: ['*'], maxAuthFailures: 0 },
      memoryLogger(),
    )
    for (const host of LOOPBACK_DENIED) {
      const target = `${host}:${port}`
      const named = await connectAndClose(`${url}?address=${encodeURIComponent(target)}`)
      expect(named, target).toMatchObject({ code: 4403, reason: 'forbidden' })
      const signed = await connectAndClose(`${jwt.url}?token=${jwtFor(target)}`)
      expect([4401, 4403], `jwt ${target}`).toContain(signed.code)
    }
    expect(accepted()).toBe(0)
    const ip6 = await lookup('ip6-localhost', { all: true }).catch(() => [])
    if (ip6.length > 0) {
      const { code } = await connectAndClose(`${url}?address=ip6-localhost:${port}`)
      expect(code).toBe(4403)
      expect(accepted()).toBe(0)
    }
  })

  it('allowed counterparts: an address rule for 127.0.0.1 and [::1] lets those (and names resolving there) through', async () => {
    const { port, accepted } = await loopbackListeners()
    const { url } = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`127.0.0.1/32:${port}`, `[::1]:${port}`] },
      memoryLogger(),
    )
    const allowed = ['127.0.0.1', '[::1]', 'localhost', '[::ffff:127.0.0.1]', '0x7f.1']
    for (const [i, host] of allowed.entries()) {
      const ws = await openWs(d, `${url}?address=${encodeURIComponent(`${host}:${port}`)}`)
      const echoed = new Promise<string>((resolve) =>
        ws.once('message', (b: Buffer) => resolve(b.toString())),
      )
      ws.send(Buffer.from(host))
      expect(await echoed).toBe(host)
      ws.close()
      expect(accepted()).toBe(i + 1)
    }
    for (const host of ['127.0.0.2', '[::]', '0.0.0.0']) {
      const { code } = await connectAndClose(
        `${url}?address=${encodeURIComponent(`${host}:${port}`)}`,
      )
      expect(code, host).toBe(4403)
    }
    expect(accepted()).toBe(allowed.length)
  })
})

describe('target policy attempt matrix: unix paths', () => {
  it('dot segments (plain, percent-encoded, double-encoded) and symlinks cannot leave the allowed directory', async () => {
    const root = await tempDir(d, 'gangway-matrix-unix-')
    const allowed = join(root, 'allowed')
    const outside = join(root, 'outside')
    await mkdir(allowed)
    await mkdir(outside)
    await symlink(outside, join(allowed, 'link'))
    let outsideAccepts = 0
    let insideAccepts = 0
    const listen = async (path: string, count: () => void) => {
      const server = net.createServer((s) => {
        count()
        s.on('error', () => {})
        s.pipe(s)
      })
      server.listen(path)
      await once(server, 'listening')
      d.add(() => new Promise((r) => server.close(r)))
    }
    await listen(join(outside, 's.sock'), () => outsideAccepts++)
    await listen(join(allowed, 's.sock'), () => insideAccepts++)
    const { url } = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`unix:${allowed}`], maxAuthFailures: 0 },
      memoryLogger(),
    )
    const attempts: Array<[string, boolean]> = [
      // [query value as sent, already encoded?]
      [`unix:${allowed}/../outside/s.sock`, false],
      [`unix:${allowed}/./../outside/s.sock`, false],
      [`unix:${allowed}/link/s.sock`, false],
      [`unix:${allowed}/link/../outside/s.sock`, false],
      [`unix:${allowed}//..//outside/s.sock`, false],
      [`unix:${outside}/s.sock`, false],
      [`unix:${allowed}/%2e%2e/outside/s.sock`, true],
      [`unix:${allowed}/%2E%2E%2Foutside%2Fs.sock`, true],
      [`unix:${allowed}/..%2foutside/s.sock`, true],
      [`unix:${allowed}/%252e%252e/outside/s.sock`, true], // a directory literally named %2e%2e
      [`unix:${allowed}/..\\outside/s.sock`, false],
      [`unix:${allowed}/\u0000/../outside/s.sock`, false],
      ['unix:s.sock', false],
    ]
    const codes: number[] = []
    for (const [value, encoded] of attempts) {
      const { code, opened } = await connectAndClose(
        `${url}?address=${encoded ? value : encodeURIComponent(value)}`,
      )
      codes.push(code)
      expect(opened && code === 1000, value).toBe(false)
    }
    // Each is refused by the policy (4403), except three that name a path inside the allowed directory once
    // normalised (`link/..` is undone lexically, so the dial goes to allowed/outside/s.sock, not through the
    // symlink; `..\\` and a literal `%2e%2e` are file names): those paths do not exist (4503).
    expect(
      codes.map((c, i) => (c === 4403 ? 4403 : `${c} ${attempts[i]?.[0].slice(root.length + 5)}`)),
    ).toEqual(
      codes.map((c, i) =>
        [3, 9, 10].includes(i) ? `4503 ${attempts[i]?.[0].slice(root.length + 5)}` : 4403,
      ),
    )
    expect(outsideAccepts).toBe(0)
    expect(insideAccepts).toBe(0)
    const ws = await openWs(d, `${url}?address=${encodeURIComponent(`unix:${allowed}/s.sock`)}`)
    ws.close()
    await once(ws, 'close')
    expect(insideAccepts).toBe(1)
  })
})
