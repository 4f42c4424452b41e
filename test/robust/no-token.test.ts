/**
 * No token anywhere: a real `gangway` process with every token backend (routes, token file, JWT, HTTP
 * token API, Redis), `--record`, `--admin` with its API and status page, and debug logging runs tunnels
 * with known tokens in every carrier (query, Authorization header, subprotocol, cookie), successes and
 * refusals (unknown token, malformed header, cookie without an allowed Origin, rate limited), and plain
 * HTTP requests naming a token in the query, the path and a header. (A token a client puts in the URL
 * *path* of an upgrade is not a carrier: the path is logged as sent, only the query is redacted.) Then every output is searched for each token, in plain, base64, base64url and URL-encoded
 * form (for a JWT also its signature alone), and for the admin token: the log output, the recording files,
 * /metrics, the admin API JSON, the status page, the close reasons and HTTP bodies clients saw. Fingerprints
 * may appear (and do).
 */
import { createHmac, randomBytes } from 'node:crypto'
import http from 'node:http'
import { once } from 'node:events'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { fingerprint } from '../../src/log.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const ROUNDS = scale(1, 5)
/** --max-auth-failures: above one round's refusals (each round comes from its own address). */
const LIMIT = 60
const ORIGIN = 'http://app.test'
const SECRET = `jwt-secret-${randomBytes(24).toString('hex')}`
const secretToken = (kind: string): string => `${kind}-${randomBytes(12).toString('hex')}`

function jwt(target: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${b64({ alg: 'HS256' })}.${b64({ target, exp: Math.floor(Date.now() / 1000) + 600 })}`
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`
}

/** The forms a token could leak in. */
function forms(token: string): string[] {
  const out = [
    token,
    Buffer.from(token).toString('base64'),
    Buffer.from(token).toString('base64url'),
    encodeURIComponent(token),
  ]
  const signature = token.split('.')[2]
  if (signature !== undefined) out.push(signature)
  return [...new Set(out)]
}

type Carrier = 'query' | 'header' | 'subprotocol' | 'cookie'
const CARRIERS: Carrier[] = ['query', 'header', 'subprotocol', 'cookie']

/** Opens a client with `token` in `carrier`; resolves with the tunnel, or its refusal. */
function connect(
  url: string,
  token: string,
  carrier: Carrier,
  extra: { origin?: string; path?: string; from?: string } = {},
): Promise<{ ws: WebSocket; opened: true } | { code: number; reason: string; opened: false }> {
  const base = `${url}${extra.path ?? ''}`
  const headers: Record<string, string> = {}
  let target = base
  let protocols: string[] = []
  if (carrier === 'query') target = `${base}?token=${encodeURIComponent(token)}`
  if (carrier === 'header') headers['authorization'] = `Bearer ${token}`
  if (carrier === 'subprotocol')
    protocols = ['binary', `gangway.bearer.${Buffer.from(token).toString('base64url')}`]
  if (carrier === 'cookie') headers['cookie'] = `gangway_token=${encodeURIComponent(token)}`
  const ws = new WebSocket(target, protocols, {
    perMessageDeflate: false,
    headers,
    ...(extra.origin === undefined ? {} : { origin: extra.origin }),
    ...(extra.from === undefined ? {} : { localAddress: extra.from }),
  })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  return new Promise((resolve) => {
    ws.once('open', () => ws.send(Buffer.from('probe')))
    ws.once('message', () => resolve({ ws, opened: true }))
    ws.once('close', (code: number, reason: Buffer) =>
      resolve({ code, reason: reason.toString(), opened: false }),
    )
  })
}

describe('no token anywhere', () => {
  it('tokens of every backend, in every carrier, succeeding and refused, leave no trace in any output', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const target = `127.0.0.1:${echo.port}`
    const tokens = {
      route: secretToken('route'),
      file: secretToken('file'),
      jwt: jwt(target),
      api: secretToken('api'),
      redis: secretToken('redis'),
    }
    const adminToken = secretToken('admin')
    const redis = await startRedisServer(d)
    const seed = new Redis(redis.port, '127.0.0.1', { lazyConnect: true })
    await seed.connect()
    await seed.set(`gw:${tokens.redis}`, target)
    seed.disconnect()
    const api = http.createServer((req, res) => {
      const token = decodeURIComponent((req.url ?? '').replace(/^\/t\//, ''))
      if (token === tokens.api) res.end(target)
      else res.writeHead(404).end()
    })
    api.listen(0, '127.0.0.1')
    await once(api, 'listening')
    d.add(() => {
      api.closeAllConnections()
      return new Promise((r) => api.close(r))
    })

    const dir = await tempDir(d, 'gangway-no-token-')
    const recordDir = join(dir, 'recordings')
    await writeFile(join(dir, 'tokens.conf'), `# tokens\n${tokens.file}: ${target}\n`)
    await writeFile(join(dir, 'jwt.key'), SECRET)
    await writeFile(join(dir, 'admin.token'), `${adminToken}\n`)
    await writeFile(
      join(dir, 'gangway.json'),
      JSON.stringify({
        listen: '127.0.0.1:0',
        logFormat: 'json',
        logLevel: 'debug',
        admin: '127.0.0.1:0',
        adminTokenFile: join(dir, 'admin.token'),
        record: `${recordDir}/`,
        routes: { lab: { target, tokens: [tokens.route] } },
        tokenFile: join(dir, 'tokens.conf'),
        jwtKey: join(dir, 'jwt.key'),
        tokenApi: `http://127.0.0.1:${(api.address() as { port: number }).port}/t/%s`,
        tokenRedis: redis.url,
        tokenRedisPrefix: 'gw:',
        allow: [`127.0.0.1/32:${echo.port}`],
        allowedOrigins: [ORIGIN],
        maxAuthFailures: LIMIT,
      }),
    )
    const proc = spawnGangway(d, ['--config', join(dir, 'gangway.json')])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const url = `ws://127.0.0.1:${portOf(listening['listen'])}/`
    const adminBase = `http://127.0.0.1:${portOf(listening['admin'])}`
    const auth = { authorization: `Bearer ${adminToken}` }
    const seen: Array<[string, string]> = [] // [where, text]
    const fetchText = async (where: string, path: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${adminBase}${path}`, { headers })
      const text = await res.text()
      seen.push([`${where} ${path} ${res.status}`, text])
      return { status: res.status, text }
    }

    let opened = 0
    for (let round = 0; round < ROUNDS; round++) {
      const from = `127.0.1.${round + 1}` // loopback too
      for (const [kind, token] of Object.entries(tokens)) {
        for (const carrier of CARRIERS) {
          const origin = ORIGIN // allowedOrigins is set: every request needs an allowed Origin
          const result = await connect(url, token, carrier, { origin, from })
          expect(result, `${kind} in ${carrier}`).toMatchObject({ opened: true })
          if (!result.opened) continue
          opened++
          const echoed = new Promise<string>((resolve) =>
            result.ws.once('message', (b: Buffer) => resolve(b.toString())),
          )
          result.ws.send(Buffer.from(`payload ${kind} ${carrier}`))
          expect(await echoed).toBe(`payload ${kind} ${carrier}`)
          // While it is live: the admin API lists it, the metrics count it.
          expect((await fetchText('api', '/api/tunnels', auth)).status).toBe(200)
          await fetchText('metrics', '/metrics')
          const closedWs = once(result.ws, 'close')
          result.ws.close(1000)
          await closedWs

          // Refusals with the same token nearby: unknown (a near miss), cookie without an allowed Origin,
          // the token in the path too.
          const refusals = [
            await connect(url, `${token}x`, carrier, { origin, from }),
            await connect(url, token, 'cookie', { origin: 'http://evil.test', from }),
            await connect(url, token, 'cookie', { from }),
            await connect(url, `${token}x`, carrier, {
              origin,
              from,
              path: `websockify/`, // a path, as noVNC sends (a token in the path is no carrier: logged)
            }),
          ]
          for (const refused of refusals) {
            expect(refused.opened).toBe(false)
            if (!refused.opened) seen.push([`close reason ${refused.code}`, refused.reason])
          }
        }
        // A malformed Authorization header carrying the token, and plain HTTP requests naming it.
        const malformed = await new Promise<{ code: number; reason: string }>((resolve) => {
          const ws = new WebSocket(url, {
            headers: { authorization: `Bearer ${token} ${token}` },
            localAddress: from,
            origin: ORIGIN,
          })
          d.add(() => ws.terminate())
          ws.on('error', () => {})
          ws.once('close', (code: number, reason: Buffer) =>
            resolve({ code, reason: reason.toString() }),
          )
        })
        seen.push([`malformed ${malformed.code}`, malformed.reason])
        for (const path of [
          `/?token=${encodeURIComponent(token)}`,
          `/${encodeURIComponent(token)}`,
        ]) {
          const res = await fetch(`${url.replace('ws:', 'http:')}${path.slice(1)}`, {
            headers: { authorization: `Bearer ${token}` },
          })
          seen.push([`http ${res.status}`, await res.text()])
        }
      }
    }
    expect(opened).toBe(ROUNDS * Object.keys(tokens).length * CARRIERS.length)

    // Rate limited: wrong tokens from one more address until 4429, then each right one.
    const limitedFrom = '127.0.2.1'
    for (let i = 0; i < LIMIT; i++) {
      const wrong = await connect(url, `${tokens.route}${i}`, 'header', {
        from: limitedFrom,
        origin: ORIGIN,
      })
      expect(wrong).toMatchObject({ opened: false, code: 4401 })
    }
    for (const [kind, token] of Object.entries(tokens)) {
      const limited = await connect(url, token, 'query', { from: limitedFrom, origin: ORIGIN })
      expect(limited, kind).toMatchObject({ opened: false, code: 4429 })
      if (!limited.opened) seen.push([`close reason ${limited.code}`, limited.reason])
    }

    // The admin side, with and without its token.
    await fetchText('status', '/status', auth)
    await fetchText('status', '/status.js', auth)
    await fetchText('api', '/api/tunnels', auth)
    await fetchText('api', '/api/tunnels', { authorization: `Bearer ${tokens.route}` })
    await fetchText('metrics', '/metrics')

    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
    seen.push(['stdout', proc.stdout.join('\n')], ['stderr', proc.stderr.join('\n')])
    const recordings = await readdir(recordDir)
    expect(recordings.length).toBe(opened)
    for (const file of recordings)
      seen.push([`recording ${file}`, await readFile(join(recordDir, file), 'utf8')])

    const secrets = [...Object.entries(tokens), ['admin', adminToken] as const]
    for (const [kind, token] of secrets) {
      for (const form of forms(token)) {
        for (const [where, text] of seen) {
          const at = text.indexOf(form)
          if (at !== -1) {
            const context = text.slice(Math.max(0, at - 200), at + form.length + 40)
            throw new Error(
              `the ${kind} token appears in ${where}: ${context.replaceAll(form, '<TOKEN>')}`,
            )
          }
        }
      }
    }
    // Positive control: the logs do name each token, by fingerprint.
    const logs = proc.stdout.join('\n')
    for (const token of Object.values(tokens)) expect(logs).toContain(fingerprint(token))
  })
})
