/**
 * "Drop-in for websockify" holds flag by flag: every flag of websockify 0.13's `--help` (and of the installed
 * websockify's, when Debian's package is there) either works with websockify's meaning or stops Gangway with
 * one line saying what to use instead. None is accepted and ignored, none changes meaning silently.
 */
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { OPTIONS } from '../../src/config/options.js'
import { WEBSOCKIFY_FLAGS } from '../../src/config/websockify-flags.js'
import { makeCert, type CertFiles } from '../helpers/certs.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { portOf, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
const setup = createDisposer()
afterEach(() => d.run())

/** websockify 0.13's flags (docs/websockify reference a.1; `websockify --help` of master). */
const WEBSOCKIFY_013 = [
  'help', 'verbose', 'traffic', 'record', 'daemon', 'run-once', 'timeout', 'idle-timeout', 'heartbeat',
  'libserver', 'cert', 'key', 'key-password', 'ssl-only', 'ssl-target', 'verify-client', 'cafile',
  'ssl-version', 'ssl-ciphers', 'unix-listen', 'unix-listen-mode', 'unix-target', 'inetd', 'prefer-ipv6',
  'web', 'web-auth', 'file-only', 'wrap-mode', 'token-plugin', 'token-source', 'host-token',
  'target-config', 'auth-plugin', 'auth-source', 'log-file', 'syslog', 'legacy-syslog',
] // prettier-ignore

const LOOPBACK = ['127.0.0.1:0', '127.0.0.1:9']

let dir: string
let cert: CertFiles
let tokens: string

beforeAll(async () => {
  dir = await tempDir(setup, 'gangway-websockify-flags-')
  cert = await makeCert(dir, 'localhost')
  tokens = join(dir, 'tokens')
  await writeFile(tokens, 'vnc: 127.0.0.1:5900\n')
  return () => setup.run()
})

interface Honoured {
  args: () => string[]
  /** Checks the startup line (and may talk to the daemon). */
  check?: (listening: LogRecord) => void | Promise<void>
}

/** How each honoured flag is run, and what shows that it kept websockify's meaning. */
const HONOURED: Record<string, Honoured> = {
  verbose: { args: () => ['-v', ...LOOPBACK], check: (l) => expect(l['logLevel']).toBe('debug') },
  record: {
    args: () => ['--record', join(dir, 'session'), ...LOOPBACK],
    check: (l) => expect(l['record']).toBe(join(dir, 'session')),
  },
  heartbeat: { args: () => ['--heartbeat', '5', ...LOOPBACK] },
  cert: { args: () => ['--cert', cert.cert, '--key', cert.key, ...LOOPBACK], check: tls },
  key: { args: () => ['--cert', cert.cert, '--key', cert.key, ...LOOPBACK], check: tls },
  'ssl-only': {
    args: () => ['--ssl-only', '--cert', cert.cert, '--key', cert.key, ...LOOPBACK],
    check: tls,
  },
  'ssl-version': {
    args: () => ['--ssl-version', 'tlsv1_3', '--cert', cert.cert, '--key', cert.key, ...LOOPBACK],
    check: tls,
  },
  'ssl-ciphers': {
    args: () => [
      '--ssl-ciphers',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
      '--cert',
      cert.cert,
      '--key',
      cert.key,
      ...LOOPBACK,
    ],
    check: tls,
  },
  'unix-listen': {
    args: () => ['--unix-listen', join(dir, 'l.sock'), '127.0.0.1:9'],
    check: (l) => {
      expect(l['listen']).toBe(`unix:${join(dir, 'l.sock')}`)
      expect(l['target']).toBe('127.0.0.1:9')
    },
  },
  'unix-listen-mode': {
    args: () => ['--unix-listen', join(dir, 'm.sock'), '--unix-listen-mode', '0660', '127.0.0.1:9'],
    check: (l) => expect(l['listen']).toBe(`unix:${join(dir, 'm.sock')}`),
  },
  'unix-target': {
    args: () => ['--unix-target', join(dir, 'vnc.sock'), '127.0.0.1:0'],
    check: (l) => expect(l['target']).toBe(`unix:${join(dir, 'vnc.sock')}`),
  },
  web: { args: () => ['--web', dir, ...LOOPBACK], check: (l) => expect(l['web']).toBe(dir) },
  'file-only': { args: () => ['--file-only', '--web', dir, ...LOOPBACK] },
  'token-plugin': {
    args: () => ['--token-plugin', 'TokenFile', '--token-source', tokens, '127.0.0.1:0'],
    check: (l) => expect(l['tokenFile']).toBe(tokens),
  },
  'token-source': {
    args: () => ['--token-plugin', 'ReadOnlyTokenFile', '--token-source', tokens, '127.0.0.1:0'],
    check: (l) => expect(l['tokenFile']).toBe(tokens),
  },
  'host-token': {
    args: () => [
      '--host-token',
      '--token-plugin',
      'TokenFile',
      '--token-source',
      tokens,
      '127.0.0.1:0',
    ],
  },
  'target-config': {
    args: () => ['--target-config', tokens, '127.0.0.1:0'],
    check: (l) => expect(l['tokenFile']).toBe(tokens),
  },
  'auth-plugin': {
    args: () => [
      '--auth-plugin',
      'ExpectOrigin',
      '--auth-source',
      'https://a.test https://b.test',
      ...LOOPBACK,
    ],
    check: async (l) => {
      // ExpectOrigin: another origin is refused before anything is dialled.
      const ws = new WebSocket(`ws://${String(l['listen'])}/`, { origin: 'https://evil.test' })
      ws.on('error', () => {})
      const [code] = (await once(ws, 'close')) as [number]
      expect(code).toBe(4403)
    },
  },
  'auth-source': {
    args: () => ['--auth-plugin', 'ExpectOrigin', '--auth-source', 'https://a.test', ...LOOPBACK],
  },
}

function tls(listening: LogRecord): void {
  expect(listening['tls']).toBe(true)
}

/** Refused flags: the value (if any) to give, and a word the hint must contain. */
const REFUSED: Record<string, { args: string[]; hint: RegExp }> = {
  traffic: { args: ['--traffic'], hint: /--log-level debug|--record/ },
  daemon: { args: ['-D'], hint: /systemd|foreground/ },
  'run-once': { args: ['--run-once'], hint: /--idle-timeout/ },
  timeout: { args: ['--timeout', '5'], hint: /--idle-timeout|RuntimeMaxSec/ },
  libserver: { args: ['--libserver'], hint: /remove it/ },
  'key-password': { args: ['--key-password', 'pw'], hint: /decrypt/ },
  'ssl-target': { args: ['--ssl-target'], hint: /tls:\/\/host:port/ },
  'verify-client': { args: ['--verify-client'], hint: /nginx|proxy/ },
  cafile: { args: ['--cafile', '/etc/ssl/ca.pem'], hint: /nginx|proxy/ },
  inetd: { args: ['--inetd'], hint: /LISTEN/ },
  'prefer-ipv6': { args: ['-6'], hint: /\[::\]:6080/ },
  'web-auth': { args: ['--web-auth'], hint: /auth_basic|proxy/ },
  'wrap-mode': { args: ['--wrap-mode', 'respawn'], hint: /supervisor/ },
  'log-file': { args: ['--log-file', '/tmp/x.log'], hint: /stdout/ },
  syslog: { args: ['--syslog', '/dev/log'], hint: /journal|logger/ },
  'legacy-syslog': { args: ['--legacy-syslog'], hint: /stdout/ },
}

describe('every websockify flag is honoured or refused with a hint', () => {
  it('the table covers every flag of websockify 0.13 and of the installed websockify --help', async () => {
    const fromHelp = await installedWebsockifyFlags()
    const known = new Set([
      ...Object.keys(HONOURED),
      ...Object.keys(REFUSED),
      'help',
      'idle-timeout',
    ])
    for (const flag of [...WEBSOCKIFY_013, ...fromHelp]) expect(known, flag).toContain(flag)
    // Gangway knows each one: as its own option, or in the websockify table.
    const gangway = new Set([
      ...OPTIONS.map((o) => o.flag),
      ...WEBSOCKIFY_FLAGS.map((f) => f.flag),
      'help',
    ])
    for (const flag of WEBSOCKIFY_013) expect(gangway, flag).toContain(flag)
  })

  it.each(Object.entries(REFUSED))(
    '--%s: exit 2, one line naming it and what to use instead',
    async (flag, spec) => {
      const result = await runGangway(d, [...spec.args, ...LOOPBACK])
      expect(result.code).toBe(2)
      expect(result.stderr).toHaveLength(1)
      expect(result.stderr[0]).toContain(`--${flag}`)
      expect(result.stderr[0]).not.toMatch(/unknown option/)
      expect(result.stderr[0]).toMatch(spec.hint)
      expect(result.stdout.join('\n')).not.toMatch(/listening/)
    },
  )

  it.each(Object.entries(HONOURED))(
    '--%s: honoured with its websockify meaning',
    async (_flag, spec) => {
      const daemon = spawnGangway(d, [...spec.args(), '--log-format', 'json'])
      const listening = await daemon.waitForLog((r) => r.msg === 'listening')
      await spec.check?.(listening)
      daemon.child.kill('SIGTERM')
      expect((await daemon.exited).code).toBe(0)
    },
  )

  it('--idle-timeout N: the daemon exits (0) once no tunnel has been open for N seconds, not while one is', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const daemon = spawnGangway(d, [
      '--idle-timeout', '1', '--log-format', 'json', '127.0.0.1:0', `127.0.0.1:${echo.port}`,
    ]) // prettier-ignore
    const listening = await daemon.waitForLog((r) => r.msg === 'listening')
    const ws = new WebSocket(`ws://127.0.0.1:${portOf(listening['listen'])}/`)
    d.add(() => ws.terminate())
    await once(ws, 'open')
    // Keep the tunnel busy for longer than the idle timeout: the daemon must stay.
    const started = Date.now()
    for (let i = 0; i < 10_000 && Date.now() - started < 2500; i++) {
      ws.send(Buffer.from('x'))
      await once(ws, 'message')
    }
    expect(daemon.child.exitCode).toBeNull()
    expect(daemon.stdout.join('\n')).not.toMatch(/idle: no tunnel open/)
    ws.close()
    const idle = await daemon.waitForLog((r) => r.msg.startsWith('idle: no tunnel open'))
    expect(idle['idleSeconds']).toBe(1)
    const lines = daemon.stdout.join('\n')
    expect(lines.indexOf('"tunnel closed"')).toBeLessThan(lines.indexOf('idle: no tunnel open'))
    expect(await daemon.exited).toEqual({ code: 0, signal: null })
  })

  it('websockify -- COMMAND (wrap a program): refused, never started and ignored', async () => {
    const result = await runGangway(d, [...LOOPBACK, '--', 'sleep', '30'])
    expect(result.code).toBe(2)
    expect(result.stderr).toEqual([expect.stringMatching(/after -- .*not supported: .*TARGET/)])
  })

  it('--help still works and does not advertise the websockify spellings', async () => {
    const result = await runGangway(d, ['--help'])
    expect(result.code).toBe(0)
    expect(result.stdout.join('\n')).not.toMatch(/--ssl-only|--unix-listen/)
  })
})

/** The long flags of the installed `websockify --help` (Debian's 0.10), or none when it is not installed. */
async function installedWebsockifyFlags(): Promise<string[]> {
  const help = await promisify(execFile)('websockify', ['--help']).then(
    (r) => r.stdout,
    () => '',
  )
  return [...help.matchAll(/--([a-z][a-z0-9-]*[a-z0-9])(?![a-z0-9-])/g)]
    .map((m) => m[1]!)
    .filter((f, i, all) => all.indexOf(f) === i)
}
