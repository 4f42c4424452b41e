/**
 * SIGHUP reloads the whole --config file in a real daemon process: routes and policies change for new
 * connections while live tunnels keep relaying; a config that fails is logged once and changes nothing.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { makeCa, makeLeaf } from '../helpers/certs.js'
import { startTlsTarget } from '../helpers/tls-target.js'
import { Digest, randomChunks, sendChunks } from '../helpers/data.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import {
  childPids,
  portOf,
  spawnGangway,
  type GangwayProcess,
  type LogRecord,
} from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN_A = 'reload-token-a-0123456789'
const TOKEN_B = 'reload-token-b-0123456789'
const TOKEN_C = 'reload-token-c-0123456789'
const RELOADED = 'config reloaded'
const FAILED = 'config reload failed; keeping the previous config'

let opened: WebSocket[] = []

/** Opens a tunnel that `stop()` closes before the daemon drains. */
async function tunnel(url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = await openWs(d, url, options)
  opened.push(ws)
  return ws
}

/** Closes every tunnel the test opened, then SIGTERM: the drain has nothing to wait for. */
async function stop(proc: GangwayProcess): Promise<void> {
  const all = opened
  opened = []
  for (const ws of all) if (ws.readyState === ws.OPEN) ws.close()
  proc.child.kill('SIGTERM')
  expect((await proc.exited).code).toBe(0)
}

async function echoPort(): Promise<number> {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  return echo.port
}

/** YAML routes: name → [token, port]. */
function routesYaml(routes: Record<string, [string, number]>): string {
  const lines = ['routes:']
  for (const [name, [token, port]] of Object.entries(routes)) {
    lines.push(`  ${name}:`, `    target: 127.0.0.1:${port}`, `    tokens: [${token}]`)
  }
  return lines.join('\n') + '\n'
}

/** Sends `total` random bytes through an echo tunnel; true when exactly those bytes came back. */
async function echoesIntact(ws: WebSocket, total: number): Promise<boolean> {
  const received = new Digest()
  const back = new Promise<void>((resolve) => {
    ws.on('message', function wsOnEcho(data: Buffer) {
      received.update(data)
      if (received.bytes < total) return
      ws.off('message', wsOnEcho)
      resolve()
    })
  })
  const sent = await sendChunks(ws, randomChunks(total, 64 * 1024))
  await back
  return received.bytes === total && sent.hex() === received.hex()
}

/** Sends SIGHUP and waits for the `nth` line with `msg` (counted over the whole run); returns it. */
async function hangup(proc: GangwayProcess, msg: string, nth = 1): Promise<LogRecord> {
  proc.child.kill('SIGHUP')
  await proc.waitForLog((r) => r.msg === msg && countOf(proc, msg) >= nth)
  return records(proc).filter((r) => r.msg === msg)[nth - 1]!
}

function records(proc: GangwayProcess): LogRecord[] {
  return proc.stdout.flatMap((line) => {
    if (!line.startsWith('{')) return []
    return [JSON.parse(line) as LogRecord]
  })
}

function countOf(proc: GangwayProcess, msg: string): number {
  return records(proc).filter((r) => r.msg === msg).length
}

async function start(config: string, extra: string[] = []) {
  const dir = await tempDir(d, 'gangway-reload-')
  const file = join(dir, 'gangway.yaml')
  await writeFile(file, config)
  const proc = spawnGangway(d, ['--config', file, '--log-format', 'json', ...extra, '127.0.0.1:0'])
  d.add(() => {
    for (const pid of childPids(proc.child.pid!)) process.kill(pid, 'SIGKILL')
  })
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  const url = `ws://127.0.0.1:${portOf(listening['listen'])}/`
  return { proc, file, dir, url, listening }
}

describe('SIGHUP reloads the --config file', () => {
  it('adds and removes routes and changes the origin policy for new connections; a live tunnel through a removed route keeps relaying', async () => {
    const [a, b] = [await echoPort(), await echoPort()]
    const v1 = routesYaml({ a: [TOKEN_A, a], b: [TOKEN_B, b] })
    const { proc, file, url } = await start(v1 + 'allowedOrigins: [http://one.test]\n')
    const one = { origin: 'http://one.test' }
    const two = { origin: 'http://two.test' }
    const live = await tunnel(`${url}?token=${TOKEN_B}`, one)
    expect(await echoesIntact(live, 256 * 1024)).toBe(true)

    await writeFile(
      file,
      routesYaml({ a: [TOKEN_A, a], c: [TOKEN_C, b] }) + 'allowedOrigins: [http://two.test]\n',
    )
    const reloaded = await hangup(proc, RELOADED)
    expect(reloaded['changed']).toEqual(expect.arrayContaining(['allowedOrigins', 'routes']))

    // Removed route: refused for new connections. Added route: works. Origin policy: the new one.
    expect((await connectAndClose(`${url}?token=${TOKEN_B}`, two)).code).toBe(4401)
    expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_C}`, two), 64 * 1024)).toBe(true)
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`, one)).code).toBe(4403)
    expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_A}`, two), 1024)).toBe(true)

    // The tunnel opened through route b before the reload is untouched, and closes normally.
    expect(await echoesIntact(live, 2 * 1024 * 1024)).toBe(true)
    const liveClosed = closed(live)
    live.close(1000)
    expect((await liveClosed).code).toBe(1000)
    const closedLine = await proc.waitForLog(
      (r) => r.msg === 'tunnel closed' && r['route'] === 'route:b',
    )
    expect(closedLine).toMatchObject({ code: 1000, by: 'client' })

    // Never a token in the log.
    for (const line of proc.stdout) {
      for (const token of [TOKEN_A, TOKEN_B, TOKEN_C]) expect(line).not.toContain(token)
    }
    await stop(proc)
  })

  it('keeps flags and positionals on top of the reloaded file, warns about options that need a restart, applies logLevel', async () => {
    const a = await echoPort()
    const { proc, file, listening, url } = await start(
      routesYaml({ a: [TOKEN_A, a] }) + 'listen: 127.0.0.1:1\nidleTimeout: 7\n',
      ['--tunnel-idle-timeout', '3'],
    )
    await writeFile(
      file,
      routesYaml({ a: [TOKEN_A, a] }) +
        'listen: 127.0.0.1:2\nidleTimeout: 9\nworkers: 3\nlogLevel: debug\n',
    )
    const reloaded = await hangup(proc, RELOADED)
    // The positional LISTEN and the flag still win: neither counts as changed; workers needs a restart.
    expect(reloaded['changed']).toEqual(['logLevel'])
    await tunnel(`${url}?token=${TOKEN_A}`)
    await proc.waitForLog((r) => r.msg === 'dialling' && r.level === 'debug')
    const warnings = records(proc).filter(
      (r) => r.msg === 'config option changed; restart to apply',
    )
    expect(warnings).toEqual([expect.objectContaining({ option: 'workers', keeping: '1' })])
    expect(listening['listen']).not.toBe('127.0.0.1:2')
    await stop(proc)
  })

  it('rejects a config that fails (syntax, value, missing token file) with one logged reason, keeps the old one in force, then applies a fix', async () => {
    const [a, b] = [await echoPort(), await echoPort()]
    const { proc, file, url } = await start(routesYaml({ a: [TOKEN_A, a] }), ['--admin', '0'])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
    const live = await tunnel(`${url}?token=${TOKEN_A}`)

    const bad: Array<[string, RegExp]> = [
      ['routes:\n  a: [\n', new RegExp(`config ${file}: invalid YAML: .* at line 3`)],
      [
        routesYaml({ a: [TOKEN_A, a] }) + 'connectTimeout: soon\n',
        new RegExp(`config ${file}: connectTimeout: expected seconds`),
      ],
      [
        routesYaml({ a: [TOKEN_A, a] }) + 'tokenFile: /nonexistent/tokens\n',
        /token file \/nonexistent\/tokens: no such file/,
      ],
    ]
    for (const [index, [text, reason]] of bad.entries()) {
      await writeFile(file, text)
      const failed = await hangup(proc, FAILED, index + 1)
      expect(failed['level']).toBe('error')
      expect(String(failed['error'])).toMatch(reason)
      // The old config is fully in force: route a opens, the live tunnel relays, /readyz stays ready.
      expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_A}`), 1024)).toBe(true)
      expect((await connectAndClose(`${url}?token=${TOKEN_B}`)).code).toBe(4401)
    }
    expect(countOf(proc, FAILED)).toBe(3)
    expect(await echoesIntact(live, 64 * 1024)).toBe(true)
    expect((await fetch(`${admin}/readyz`)).status).toBe(200)

    await writeFile(file, routesYaml({ a: [TOKEN_A, a], b: [TOKEN_B, b] }))
    await hangup(proc, RELOADED)
    expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_B}`), 1024)).toBe(true)
    const metrics = await (await fetch(`${admin}/metrics`)).text()
    expect(metrics).toMatch(/^gangway_config_reloads_total\{result="failed"\} 3$/m)
    expect(metrics).toMatch(/^gangway_config_reloads_total\{result="ok"\} 1$/m)
    await stop(proc)
  })

  it('survives repeated reloads (valid and invalid) while tunnels carry data, and leaks no connection slot', async () => {
    const a = await echoPort()
    const route = (extra: string) =>
      routesYaml({ a: [TOKEN_A, a] }) + '    maxConnections: 4\n' + extra
    const { proc, file, url } = await start(route(''))
    const sockets = await Promise.all(
      Array.from({ length: 4 }, () => tunnel(`${url}?token=${TOKEN_A}`)),
    )
    const transfers = Promise.all(sockets.map((ws) => echoesIntact(ws, 4 * 1024 * 1024)))
    const rounds = 10
    for (let i = 1; i <= rounds; i++) {
      await writeFile(file, i % 2 === 0 ? 'routes: [\n' : route(`idleTimeout: ${i}\n`))
      await hangup(proc, i % 2 === 0 ? FAILED : RELOADED, Math.ceil(i / 2))
    }
    expect(await transfers).toEqual([true, true, true, true])
    // All four slots are taken until these tunnels end, then all four come back.
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4429)
    await Promise.all(
      sockets.map((ws) => {
        const done = closed(ws)
        ws.close()
        return done
      }),
    )
    await proc.waitForLog(() => countOf(proc, 'tunnel closed') >= 4)
    const again = await Promise.all(
      Array.from({ length: 4 }, () => tunnel(`${url}?token=${TOKEN_A}`)),
    )
    for (const ws of again) expect(await echoesIntact(ws, 1024)).toBe(true)
    await stop(proc)
  })

  it('without --config, SIGHUP re-reads the token file given as a flag', async () => {
    const a = await echoPort()
    const dir = await tempDir(d, 'gangway-reload-')
    const tokens = join(dir, 'tokens')
    await writeFile(tokens, `${TOKEN_A}: 127.0.0.1:${a}\n`)
    const proc = spawnGangway(d, ['--token-file', tokens, '--log-format', 'json', '127.0.0.1:0'])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const url = `ws://127.0.0.1:${portOf(listening['listen'])}/`
    await writeFile(tokens, `${TOKEN_B}: 127.0.0.1:${a}\n`)
    expect(await hangup(proc, RELOADED)).toMatchObject({ changed: [] })
    expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_B}`), 1024)).toBe(true)
    expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4401)
    await stop(proc)
  })

  it('with --workers 2, every worker applies the reload and the primary logs the outcome once', async () => {
    const [a, b] = [await echoPort(), await echoPort()]
    const { proc, file, url } = await start(routesYaml({ a: [TOKEN_A, a] }), ['--workers', '2'])

    await writeFile(file, routesYaml({ a: [TOKEN_A, a], b: [TOKEN_B, b] }))
    const reloaded = await hangup(proc, RELOADED)
    expect(reloaded).toMatchObject({ worker: 'primary', workers: 2 })
    const sockets = await Promise.all(
      Array.from({ length: 12 }, () => tunnel(`${url}?token=${TOKEN_B}`)),
    )
    for (const ws of sockets) expect(await echoesIntact(ws, 1024)).toBe(true)
    const servedBy = new Set(
      records(proc)
        .filter((r) => r.msg === 'tunnel open' && r['route'] === 'route:b')
        .map((r) => r['worker']),
    )
    expect(servedBy).toEqual(new Set([0, 1]))

    await writeFile(file, 'routes: [\n')
    const failed = await hangup(proc, FAILED)
    expect(failed).toMatchObject({ worker: 'primary', workers: 2 })
    expect(countOf(proc, FAILED)).toBe(1) // once, not once per worker
    expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_B}`), 1024)).toBe(true)
    await stop(proc)
  })

  it.each(['route', 'daemon-wide'] as const)(
    'reloads the %s TLS settings of tls:// targets: a wrong CA is refused, a missing CA file fails the reload, the fix applies',
    async (where) => {
      const dir = await tempDir(d, 'gangway-reload-tls-')
      const ca = await makeCa(dir, 'ca')
      const otherCa = await makeCa(dir, 'other-ca')
      const leaf = await makeLeaf(dir, ca, 'target.test', 'server')
      const target = await startTlsTarget({ cert: leaf.pem, key: await readFile(leaf.key, 'utf8') })
      d.add(() => target.close())
      const route = (caFile: string) =>
        [
          ...(where === 'daemon-wide' ? [`targetCa: ${caFile}`] : []),
          'routes:',
          '  secure:',
          `    target: tls://127.0.0.1:${target.port}`,
          `    tokens: [${TOKEN_A}]`,
          ...(where === 'route' ? ['    tls:', `      ca: ${caFile}`] : []),
          '',
        ].join('\n')
      const { proc, file, url } = await start(route(otherCa.cert))
      const refused = await connectAndClose(`${url}?token=${TOKEN_A}`)
      expect(refused.code).toBe(4502)

      await writeFile(file, route(join(dir, 'no-such-ca.pem')))
      const failed = await hangup(proc, FAILED)
      expect(String(failed['error'])).toContain('no-such-ca.pem')
      expect((await connectAndClose(`${url}?token=${TOKEN_A}`)).code).toBe(4502)

      await writeFile(file, route(ca.cert))
      await hangup(proc, RELOADED)
      expect(await echoesIntact(await tunnel(`${url}?token=${TOKEN_A}`), 64 * 1024)).toBe(true)
      await stop(proc)
    },
  )
})
