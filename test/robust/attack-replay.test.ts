/**
 * Issue 13's class guard "nothing a client sends can end the process": real `gangway` processes in every
 * mode the outside review used (PROXY headers towards the target v1 and v2 behind a trusted proxy, client-
 * named targets with a TLS route and unix rules, shared state with the admin API, `--cert`, a fixed TARGET,
 * a unix-socket listener) get the review's whole attack set replayed, the inputs of all 13 findings:
 * zone-id `X-Forwarded-For`/`Forwarded` addresses, forged `Forwarded` from one address, silent and
 * half-ClientHello TLS clients, a route's token naming another TLS target, tokens in odd URLs (`/??token=`,
 * `#&token=`, nginx's `/gangway/?token=`), bad tokens on a unix listener, an aborted admin body, a unix
 * symlink out of the allowed directory, refused clients that never answer the close frame, names no rule
 * matches, `?address=` on a fixed target, SIGUSR1/SIGUSR2. Afterwards (some attackers still connected)
 * every process must still be alive and relay. Whether each finding's own fix holds is its regression
 * test's business; this one only asks "alive, and still relays".
 */
import { once } from 'node:events'
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import tls from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { makeCa, makeCert, makeLeaf } from '../helpers/certs.js'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTlsTarget } from '../helpers/tls-target.js'
import { tempDir } from '../helpers/tmp.js'
import { portOf, spawnGangway, type GangwayProcess } from '../cli/gangway-process.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'attack-replay-route-token-0001'
const TLS_TOKEN = 'attack-replay-tls-route-token-0002'
const ADMIN_TOKEN = 'attack-replay-admin-token-0003'
/** Clients that are refused and never answer the close frame (the review used 300). */
const SILENT_REFUSED = scale(40, 300)

interface Where {
  /** Connects a fresh plain socket to the daemon's listener. */
  connect(): net.Socket
  /** `ws://…` or `wss://…` or `ws+unix://…` base for the canary. */
  wsBase: string
  tls: boolean
}

interface Mode {
  name: string
  args: string[]
  where(proc: GangwayProcess, listening: Record<string, unknown>): Where
  adminPort?: (listening: Record<string, unknown>) => number
}

/**
 * Sends raw bytes, then waits (bounded) for the daemon's first answer or its close, unless `answered` is
 * false (a silent client gets no answer); never fails.
 */
async function send(
  where: Where,
  bytes: string | Buffer,
  keepOpen = false,
  answered = true,
): Promise<net.Socket> {
  const raw = where.connect()
  raw.on('error', () => {})
  const socket = where.tls
    ? tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' })
    : raw
  socket.on('error', () => {})
  d.add(() => socket.destroy())
  await Promise.race([
    once(socket, where.tls ? 'secureConnect' : 'connect').then(() => socket.write(bytes)),
    once(socket, 'close'),
  ])
  if (answered) {
    await Promise.race([once(socket, 'data'), once(socket, 'close'), delayUnref(10_000)])
  }
  if (!keepOpen) socket.destroy()
  return socket
}

function delayUnref(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

function upgrade(path: string, headers: Record<string, string> = {}): string {
  return upgradeRequest(headers, path)
}

/** Opens a tunnel with the route's token and checks that bytes come back (the target may prepend a PROXY header). */
async function relays(where: Where, query = `?token=${TOKEN}`): Promise<void> {
  const ws = new WebSocket(`${where.wsBase}${query}`, {
    perMessageDeflate: false,
    rejectUnauthorized: false,
  })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  await once(ws, 'open')
  let got = ''
  const echoed = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      got += data.toString('latin1')
      if (got.includes('canary')) resolve()
    }),
  )
  ws.send(Buffer.from('canary'))
  await echoed
  ws.close()
}

async function abortedAdminBody(port: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(
    `POST /api/revoke HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"fingerprint":',
  )
  socket.destroy()
  await once(socket, 'close')
}

describe('the review’s attack set against every mode it used (issue 13)', () => {
  it('every daemon is alive and still relays afterwards', async () => {
    const dir = await tempDir(d, 'gangway-attack-replay-')
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const ca = await makeCa(dir, 'ca')
    const server = await makeLeaf(dir, ca, 'target.test', 'server')
    const client = await makeLeaf(dir, ca, 'gangway-client', 'client', { client: true })
    const listenerCert = await makeCert(dir, 'listener')
    const tlsEcho = await startTlsTarget({
      cert: server.pem,
      key: await readFile(server.key, 'utf8'),
      clientCa: ca.pem,
    })
    d.add(() => tlsEcho.close())
    const allowed = join(dir, 'allowed')
    const outside = join(dir, 'outside')
    await mkdir(allowed)
    await mkdir(outside)
    const outsideServer = net.createServer((s) => s.destroy()).listen(join(outside, 's.sock'))
    await once(outsideServer, 'listening')
    d.add(() => new Promise((r) => outsideServer.close(r)))
    await symlink(join(outside, 's.sock'), join(allowed, 'link.sock'))
    const redis = await startRedisServer(d)
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    const routes = {
      echo: { target: `127.0.0.1:${echo.port}`, tokens: [TOKEN] },
      secure: {
        target: `tls://127.0.0.1:${tlsEcho.port}`,
        tokens: [TLS_TOKEN],
        tls: { ca: ca.cert, cert: client.cert, key: client.key },
      },
    }
    const config = join(dir, 'gangway.json')
    await writeFile(config, JSON.stringify({ routes }))
    const gated = (proxyProtocol: 'v1' | 'v2'): string[] => [
      `--config=${config}`,
      '--trust-proxy=127.0.0.1',
      `--target-proxy-protocol=${proxyProtocol}`,
      '--client-targets',
      `--allow=127.0.0.1:${tlsEcho.port}`,
      `--allow=unix:${allowed}`,
      `--max-connections=${SILENT_REFUSED / 2}`,
      '--max-auth-failures=5',
      '127.0.0.1:0',
    ]
    const tcpWhere = (_proc: GangwayProcess, listening: Record<string, unknown>): Where => {
      const port = portOf(listening['listen'])
      return {
        connect: () => net.connect(port, '127.0.0.1'),
        wsBase: `ws://127.0.0.1:${port}/`,
        tls: false,
      }
    }
    const unixSocket = join(dir, 'gangway.sock')
    const modes: Mode[] = [
      {
        name: 'proxy protocol v2 towards the target, trusted proxy, client targets, shared state, admin',
        args: [
          ...gated('v2'),
          `--state-redis=${redis.url}`,
          `--admin-token-file=${join(dir, 'admin-token')}`,
          '--admin=0',
        ],
        where: tcpWhere,
        adminPort: (listening) => portOf(listening['admin']),
      },
      { name: 'proxy protocol v1 towards the target', args: gated('v1'), where: tcpWhere },
      {
        name: '--cert (TLS listener), fixed TARGET',
        args: [
          `--cert=${listenerCert.cert}`,
          `--key=${listenerCert.key}`,
          '--handshake-timeout=5',
          '127.0.0.1:0',
          `127.0.0.1:${echo.port}`,
        ],
        where: (_proc, listening) => {
          const port = portOf(listening['listen'])
          return {
            connect: () => net.connect(port, '127.0.0.1'),
            wsBase: `wss://127.0.0.1:${port}/`,
            tls: true,
          }
        },
      },
      {
        name: 'unix-socket listener with routes',
        // No failure limit here: one shared bucket for every unix client is finding 6 (harden-a's fix).
        args: [`--config=${config}`, '--max-auth-failures=0', `unix:${unixSocket}`],
        where: () => ({
          connect: () => net.connect(unixSocket),
          wsBase: `ws+unix://${unixSocket}:/`,
          tls: false,
        }),
      },
    ]

    for (const mode of modes) {
      const proc = spawnGangway(d, ['--log-format=json', ...mode.args])
      const listening = await proc.waitForLog((r) => r.msg === 'listening')
      const where = mode.where(proc, listening)
      await relays(where).catch((err: Error) => {
        throw new Error(`${mode.name}: no canary before the attacks: ${err.message}`)
      })

      // 1: zone ids with colons in forwarding headers.
      for (const headers of <Record<string, string>[]>[
        { 'X-Forwarded-For': 'fe80::1%a:b:c:d:e:f:g:h' },
        { Forwarded: 'for="[fe80::1%a:b:c:d:e:f:g:h]"' },
        { 'X-Forwarded-For': 'fe80::1%a:b:c:d:e:f:g:h', Forwarded: 'for="[fe80::1%eth0]:80"' },
      ]) {
        await send(where, upgrade(`/?token=${TOKEN}`, headers))
      }
      // 2: one client forging Forwarded addresses while guessing tokens.
      for (let n = 1; n <= 15; n++) {
        await send(where, upgrade(`/?token=guess-${n}`, { Forwarded: `for=198.51.100.${n}` }))
      }
      // 3: TLS (or plain) silence, and half a ClientHello: kept open through the rest of the replay.
      await send({ ...where, tls: false }, Buffer.alloc(0), true, false)
      const halfHello = Buffer.from('16030100c8010000c40303', 'hex')
      await send({ ...where, tls: false }, halfHello, true, !where.tls)
      // 4: a TLS route's token naming another TLS target.
      await send(where, upgrade(`/?token=${TLS_TOKEN}&address=tls://127.0.0.1:${tlsEcho.port}`))
      // 5 and 13: tokens in odd URLs, and nginx's prefixed path.
      for (const path of [
        `/??token=${TOKEN}&route=echo`,
        `/?route=other#&token=${TOKEN}`,
        `/gangway/?token=${TOKEN}`,
        `/?%74oken=${TOKEN}&token=${TOKEN};x`,
      ]) {
        await send(where, upgrade(path))
      }
      // 6: bad tokens (on the unix listener: every client shared one failure bucket).
      for (let n = 0; n < 12; n++) await send(where, upgrade(`/?token=bad-${n}`))
      // 7: an aborted admin body.
      if (mode.adminPort !== undefined) {
        for (let n = 0; n < 3; n++) await abortedAdminBody(mode.adminPort(listening))
      }
      // 8: a symlink out of the allowed directory.
      const link = encodeURIComponent(`unix:${join(allowed, 'link.sock')}`)
      await send(where, upgrade(`/?token=${TOKEN}&address=${link}`))
      // 10: names no rule matches (never resolved outside: .invalid, and no rule covers port 443).
      for (const name of ['db.internal.invalid', 'no-such-name.invalid']) {
        await send(where, upgrade(`/?token=${TOKEN}&address=${name}:443`))
      }
      // 11: a client-named target on a fixed TARGET or with a route's token.
      await send(where, upgrade(`/?token=${TOKEN}&address=127.0.0.1:${echo.port}`))
      await send(where, upgrade(`/?address=127.0.0.1:${echo.port}`))
      // 9: refused clients that never read or answer the close frame (kept open).
      const silent = await Promise.all(
        Array.from({ length: SILENT_REFUSED }, () => send(where, upgrade('/?token=nope'), true)),
      )
      // 12: signals.
      proc.child.kill('SIGUSR1')
      proc.child.kill('SIGUSR2')
      await proc.waitForLog((r) => r.msg === 'SIGUSR2 ignored')

      expect(proc.child.exitCode, mode.name).toBeNull()
      expect(proc.child.signalCode, mode.name).toBeNull()
      // A fresh address for the canary: the bad tokens above may have blocked 127.0.0.1's attempts.
      const canary = mode.args.includes('--trust-proxy=127.0.0.1')
        ? relaysFrom(where, '203.0.113.77')
        : relays(where)
      await canary.catch((err: Error) => {
        throw new Error(`${mode.name}: no canary after the attacks: ${err.message}`)
      })
      for (const socket of silent) socket.destroy()
      expect(proc.stderr.filter((line) => /Uncaught|Unhandled|RangeError/.test(line))).toEqual([])
      // Not a drain test: attackers are still connected.
      proc.child.kill('SIGKILL')
      await proc.exited
    }
  })
})

/** The canary through the trusted proxy, as a client the failure counter has never seen. */
async function relaysFrom(where: Where, address: string): Promise<void> {
  const ws = new WebSocket(`${where.wsBase}?token=${TOKEN}`, {
    perMessageDeflate: false,
    headers: { 'X-Forwarded-For': address },
  })
  d.add(() => ws.terminate())
  ws.on('error', () => {})
  await once(ws, 'open')
  let got = ''
  const echoed = new Promise<void>((resolve) =>
    ws.on('message', (data: Buffer) => {
      got += data.toString('latin1')
      if (got.includes('canary')) resolve()
    }),
  )
  ws.send(Buffer.from('canary'))
  await echoed
  ws.close()
}
