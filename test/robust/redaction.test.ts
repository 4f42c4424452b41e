/**
 * Redaction by the same parser that reads the token (issue 13, class guard). Generated request targets
 * (repeated `?`, `#` anywhere, encoded names, duplicated parameters, odd separators `;` `&&` `+`) are sent
 * as written to a real `gangway` process (routes, `--admin` with its API, debug logs). For each, whatever
 * token a carrier reads from it, valid or not, must appear in no log line, close reason, metric or admin
 * field, in plain, URL-encoded, base64 or base64url form. Also, at unit level: every query reader agrees
 * with URLSearchParams, and `redactUrl` hides every token `extractToken` reads.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { extractToken, queryParameter, redactUrl } from '../../src/auth/carriers.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const SOURCES = { cookieName: 'gangway_token', hostToken: false }

/** Names that a reader decodes to `token`, and some that it does not. */
const TOKEN_NAMES = ['token', '%74oken', 'tok%65n', '%74%6F%6B%65%6E', 'TOKEN', 'Token']
const OTHER = [
  'route=echo',
  'route=other',
  'route=',
  'a=b',
  '',
  '#',
  '##x',
  '?',
  'a+b=c+d',
  'x=%zz',
  'x=1;y=2',
  '%26=%3D',
]

/** A query some carrier may read `tokens` from: the parts, joined by `&` (or `&&`), after one or more `?`. */
function queryWith(tokens: readonly string[]) {
  const value = (token: string) =>
    fc.constantFrom(token, encodeURIComponent(token), token.replace(/-/g, '%2D'))
  const tokenPart = fc.oneof(
    fc
      .tuple(fc.constantFrom(...TOKEN_NAMES), fc.constantFrom(...tokens))
      .chain(([name, token]) => value(token).map((v) => `${name}=${v}`)),
    fc.constantFrom(...tokens).chain((token) => value(token).map((v) => `x=1;token=${v}`)),
  )
  const part = fc.oneof({ weight: 2, arbitrary: tokenPart }, fc.constantFrom(...OTHER))
  return fc
    .tuple(
      fc.constantFrom('/', '/websockify', '/a#b'),
      fc.constantFrom('?', '??', '?&', '?#', '?;'),
      fc.array(part, { minLength: 1, maxLength: 6 }),
      fc.constantFrom('&', '&&'),
      fc.option(fc.constantFrom('#', '#&', '#?'), { nil: undefined }),
      fc.nat(6),
    )
    .map(([path, lead, parts, sep, hash, at]) => {
      const all = [...parts]
      if (hash !== undefined) all.splice(Math.min(at, all.length), 0, hash)
      return `${path}${lead}${all.join(sep)}`
    })
}

/** The forms a token could leak in. */
function forms(token: string): string[] {
  return [
    token,
    encodeURIComponent(token),
    Buffer.from(token).toString('base64'),
    Buffer.from(token).toString('base64url'),
  ]
}

describe('redaction by the parser that reads the token', () => {
  it('every query reader agrees with URLSearchParams; redactUrl hides every token a carrier reads', () => {
    const tokens = ['guess-0a1b2c3d', 'guess-9f8e7d6c', 'valid-5a5a5a5a']
    fc.assert(
      fc.property(queryWith(tokens), (url) => {
        const query = url.slice(url.indexOf('?') + 1)
        for (const name of ['token', 'route', 'address']) {
          const expected = new URLSearchParams(query).get(name)
          expect(queryParameter(url, name)).toBe(
            expected === '' ? undefined : (expected ?? undefined),
          )
        }
        const read = extractToken({ headers: {}, url }, SOURCES)?.token
        const shown = redactUrl(url)!
        if (read !== undefined) for (const form of forms(read)) expect(shown).not.toContain(form)
        for (const token of tokens) {
          // Any token written under a name read as `token` is hidden, not only the first one.
          if (new URLSearchParams(query).getAll('token').includes(token)) {
            expect(shown).not.toContain(token)
          }
        }
      }),
      { numRuns: scale(5_000, 100_000) },
    )
  })

  it('a daemon logs, answers, counts and lists no token it read from a generated URL', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const target = `127.0.0.1:${echo.port}`
    const valid = `valid-${randomBytes(6).toString('hex')}`
    const other = `other-${randomBytes(6).toString('hex')}`
    const adminToken = `admin-${randomBytes(12).toString('hex')}`
    const guesses = Array.from({ length: 4 }, () => `guess-${randomBytes(6).toString('hex')}`)
    const dir = await tempDir(d, 'gangway-redaction-')
    await writeFile(join(dir, 'admin.token'), `${adminToken}\n`)
    await writeFile(
      join(dir, 'gangway.json'),
      JSON.stringify({
        listen: '127.0.0.1:0',
        logFormat: 'json',
        logLevel: 'debug',
        admin: '127.0.0.1:0',
        adminTokenFile: join(dir, 'admin.token'),
        maxAuthFailures: 0,
        routes: {
          echo: { target, tokens: [valid] },
          other: { target, tokens: [other] },
        },
      }),
    )
    const proc = spawnGangway(d, ['--config', join(dir, 'gangway.json')])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const port = portOf(listening['listen'])
    const adminBase = `http://127.0.0.1:${portOf(listening['admin'])}`

    const read = new Set<string>()
    const seen: string[] = []
    const open: net.Socket[] = []
    await fc.assert(
      fc.asyncProperty(queryWith([valid, other, ...guesses]), async (url) => {
        const token = extractToken({ headers: {}, url }, SOURCES)?.token
        if (token !== undefined) read.add(token)
        const outcome = await upgrade(port, url)
        if (outcome.kind === 'closed') seen.push(outcome.reason)
        else open.push(outcome.socket)
      }),
      { numRuns: scale(60, 1_000) },
    )
    // While the admitted tunnels are open: the admin API lists them, the metrics count them.
    const auth = { authorization: `Bearer ${adminToken}` }
    for (const path of ['/api/tunnels', '/metrics']) {
      const res = await fetch(`${adminBase}${path}`, { headers: auth })
      expect(res.status).toBe(200)
      seen.push(await res.text())
    }
    for (const socket of open) socket.destroy()
    expect(read.size).toBeGreaterThan(1) // the generator did produce URLs with tokens in them
    expect(open.length).toBeGreaterThan(0) // and some opened tunnels, listed by the admin API
    const outputs = [...seen, ...proc.stdout, ...proc.stderr].join('\n')
    for (const token of read) {
      for (const form of forms(token)) expect(outputs.includes(form), form).toBe(false)
    }
    expect(proc.child.exitCode).toBeNull()
  })
})

/**
 * Sends an upgrade for `path` as written, then one masked binary frame: an admitted tunnel echoes it, a
 * refused one answers with a close frame. Resolves with which, reading at most 64 KiB.
 */
async function upgrade(
  port: number,
  path: string,
): Promise<{ kind: 'closed'; reason: string } | { kind: 'open'; socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1')
  d.add(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(upgradeRequest({}, path))
  let buf = Buffer.alloc(0)
  let sentProbe = false
  while (buf.length < 65536) {
    const next = await Promise.race([
      once(socket, 'data').then(([chunk]) => chunk as Buffer),
      once(socket, 'close').then(() => undefined),
    ])
    if (next === undefined) return { kind: 'closed', reason: buf.toString('latin1') }
    buf = Buffer.concat([buf, next])
    const headEnd = buf.indexOf('\r\n\r\n')
    if (headEnd === -1) continue
    if (!buf.subarray(0, 12).toString().includes('101')) {
      socket.destroy()
      return { kind: 'closed', reason: buf.toString('latin1') } // an HTTP answer (400, …)
    }
    if (!sentProbe) {
      sentProbe = true
      // FIN + binary, masked with a zero key, 5 bytes of payload.
      socket.write(Buffer.concat([Buffer.from([0x82, 0x85, 0, 0, 0, 0]), Buffer.from('probe')]))
    }
    const frames = buf.subarray(headEnd + 4)
    if (frames.length < 2 || frames.length < 2 + (frames[1]! & 0x7f)) continue
    const opcode = frames[0]! & 0x0f
    if (opcode === 0x8) {
      socket.destroy()
      return { kind: 'closed', reason: frames.subarray(4, 2 + frames[1]!).toString() }
    }
    return { kind: 'open', socket }
  }
  throw new Error('no answer within 64 KiB')
}
