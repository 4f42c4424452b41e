import { once } from 'node:events'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { describeDefault, OPTIONS } from '../../src/config/options.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { closed, openWs } from '../helpers/ws.js'
import { portOf, REPO_ROOT, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const disposer = createDisposer()
afterEach(() => disposer.run())

async function echoPort(): Promise<number> {
  const echo = await startEchoServer()
  disposer.add(() => echo.close())
  return echo.port
}

/** Sends one binary message and resolves with the echoed bytes. */
async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message')
  ws.send(Buffer.from(text))
  const [data] = (await reply) as [Buffer]
  return data.toString()
}

const isListening = (r: LogRecord): boolean => r.msg === 'listening'

/** Starts the daemon in front of a fresh echo server; resolves once it logged "listening". */
async function startDaemon(extraArgs: string[] = []) {
  const target = await echoPort()
  const proc = spawnGangway(disposer, [
    '--log-format',
    'json',
    ...extraArgs,
    '127.0.0.1:0',
    `127.0.0.1:${target}`,
  ])
  const listening = await proc.waitForLog(isListening)
  return { proc, listening, url: `ws://127.0.0.1:${portOf(listening['listen'])}/` }
}

/** Resolves with the error a WebSocket connect attempt fails with (ECONNREFUSED once the daemon stops). */
async function connectError(url: string): Promise<NodeJS.ErrnoException> {
  const ws = new WebSocket(url)
  disposer.add(() => ws.terminate())
  const [err] = (await once(ws, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException]
  return err
}

describe('gangway --help and --version', () => {
  it('documents every option with its default', async () => {
    const { code, stdout, stderr } = await runGangway(disposer, ['--help'])
    expect(code).toBe(0)
    expect(stderr).toEqual([])
    // One section per option: its first line starts with the flag, continuation lines are indented.
    const sections = new Map<string, string>()
    let current: string | undefined
    for (const line of stdout) {
      const start = /^\s+(?:-\w, )?--([\w-]+)\s/.exec(line)
      if (start?.[1]) current = start[1]
      else if (!/^\s{6,}\S/.test(line)) current = undefined
      if (current) sections.set(current, `${sections.get(current) ?? ''} ${line.trim()}`)
    }
    expect(sections.has('config')).toBe(true)
    for (const spec of OPTIONS) {
      const section = sections.get(spec.flag)?.replace(/\s+/g, ' ')
      expect(section, `--${spec.flag}`).toContain(`Default: ${describeDefault(spec)}.`)
    }
  })

  it('prints the package version', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string
    }
    const { code, stdout } = await runGangway(disposer, ['--version'])
    expect(code).toBe(0)
    expect(stdout).toEqual([pkg.version])
  })
})

describe('gangway usage errors: exit 2, one line on stderr, nothing listens', () => {
  it.each([
    [['--bogus', '6080', 'localhost:5900'], 'gangway: unknown option --bogus (see gangway --help)'],
    [['6080', 'a:1', 'extra'], 'gangway: unexpected argument "extra" (see gangway --help)'],
    [
      ['--heartbeat', 'abc', '6080', 'localhost:5900'],
      'gangway: --heartbeat: expected seconds (a non-negative number), got "abc"',
    ],
    [
      ['--compress=yes', '6080', 'localhost:5900'],
      'gangway: --compress: expected true or false, got "yes"',
    ],
    [
      ['6080', 'localhost'],
      'gangway: TARGET "localhost" has no port (expected host:port or unix:/path)',
    ],
    [
      ['::1:6080', 'localhost:5900'],
      'gangway: LISTEN "::1:6080" has more than one ":" (an IPv6 address must be bracketed: write it as [::1]:6080)',
    ],
    [
      ['127.0.0.1:99999', 'localhost:5900'],
      'gangway: LISTEN "127.0.0.1:99999" has an invalid port "99999" (a port is a number from 0 to 65535)',
    ],
    [
      ['6080'],
      'gangway: missing TARGET (expected host:port or unix:/path after LISTEN, or "target" in the config file)',
    ],
    [[], 'gangway: missing LISTEN and TARGET (usage: gangway [options] LISTEN TARGET)'],
    [
      ['--web', '/nonexistent/gangway-www', '6080', 'localhost:5900'],
      'gangway: --web: no such directory "/nonexistent/gangway-www"',
    ],
    [
      ['demo', '6080', 'localhost:5900'],
      'gangway: unexpected argument "localhost:5900" (see gangway --help)',
    ],
  ])('%j → %s', async (args, line) => {
    const { code, stdout, stderr } = await runGangway(disposer, args)
    expect(code).toBe(2)
    expect(stderr).toEqual([line])
    expect(stdout).toEqual([])
  })

  it.each([
    ['g.yaml', 'heartbeet: 1\n', 'unknown key "heartbeet"'],
    [
      'g.yaml',
      'heartbeat: soon\n',
      'heartbeat: expected seconds (a non-negative number), got "soon"',
    ],
    [
      'g.json',
      '{ "maxMessageSize": "huge" }',
      'maxMessageSize: expected a positive size in bytes (e.g. 65536, 512KiB, 1MiB, 4mb), got "huge"',
    ],
    [
      'g.yaml',
      'target: localhost\n',
      'target "localhost" has no port (expected host:port or unix:/path)',
    ],
    [
      'g.json',
      '{\n  "heartbeat": 1,\n}\n',
      'invalid JSON at line 3, column 1: trailing comma before "}"',
    ],
    [
      'g.yml',
      'heartbeat: 1\nheartbeat: 2\n',
      'invalid YAML: Map keys must be unique at line 2, column 1',
    ],
  ])('a bad config file %s (%j) is named in the error', async (name, text, problem) => {
    const path = join(await tempDir(disposer, 'gangway-cli-'), name)
    await writeFile(path, text)
    const { code, stderr } = await runGangway(disposer, ['--config', path, '6080', 'a:1'])
    expect(code).toBe(2)
    expect(stderr).toEqual([`gangway: config ${path}: ${problem}`])
  })

  it('an unreadable config file is named in the error', async () => {
    const path = join(await tempDir(disposer, 'gangway-cli-'), 'missing.yaml')
    const { code, stderr } = await runGangway(disposer, ['--config', path, '6080', 'a:1'])
    expect(code).toBe(2)
    expect(stderr).toEqual([`gangway: config ${path}: cannot read it (no such file)`])
  })
})

describe('gangway config files', () => {
  it('reads a YAML file, and flags and positionals override it', async () => {
    const dir = await tempDir(disposer, 'gangway-cli-')
    const target = await echoPort()
    await mkdir(join(dir, 'from-file'))
    await mkdir(join(dir, 'from-flag'))
    await writeFile(
      join(dir, 'gangway.yaml'),
      [
        'listen: 127.0.0.1:0',
        'target: 127.0.0.1:1',
        'logLevel: error',
        'logFormat: pretty',
        'web: from-file',
        'heartbeat: 0.25',
        '',
      ].join('\n'),
    )
    const proc = spawnGangway(
      disposer,
      [
        '--config',
        'gangway.yaml',
        '--log-level',
        'info',
        '--log-format',
        'json',
        '--web',
        'from-flag',
        '127.0.0.1:0',
        `127.0.0.1:${target}`,
      ],
      { cwd: dir },
    )
    // The line is printed at all (file said "error"), as JSON (file said "pretty").
    const listening = await proc.waitForLog(isListening)
    expect(listening).toMatchObject({
      target: `127.0.0.1:${target}`,
      web: join(dir, 'from-flag'),
    })
    expect(listening['version']).toMatch(/^\d+\.\d+\.\d+/)
    const ws = await openWs(disposer, `ws://127.0.0.1:${portOf(listening['listen'])}/`)
    expect(await roundTrip(ws, 'through the file-configured daemon')).toBe(
      'through the file-configured daemon',
    )
    proc.child.kill('SIGTERM')
    ws.close()
    expect((await proc.exited).code).toBe(0)
  })

  it('reads listen, target and options from a JSON file alone', async () => {
    const dir = await tempDir(disposer, 'gangway-cli-')
    const target = await echoPort()
    await writeFile(
      join(dir, 'gangway.json'),
      JSON.stringify({
        listen: '127.0.0.1:0',
        target: `127.0.0.1:${target}`,
        logFormat: 'json',
        web: '.',
      }),
    )
    const proc = spawnGangway(disposer, ['--config', join(dir, 'gangway.json')], { cwd: dir })
    const listening = await proc.waitForLog(isListening)
    expect(listening).toMatchObject({ target: `127.0.0.1:${target}`, web: dir })
    expect(listening['listen']).toMatch(/^127\.0\.0\.1:\d+$/)
    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
  })
})

describe('gangway startup failures', () => {
  it('exits 1 with one line when the address is in use', async () => {
    const blocker = net.createServer()
    blocker.listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    disposer.add(() => new Promise((resolve) => blocker.close(resolve)))
    const port = (blocker.address() as net.AddressInfo).port
    const { code, stderr } = await runGangway(disposer, [
      '--log-format',
      'json',
      `127.0.0.1:${port}`,
      '127.0.0.1:1',
    ])
    expect(code).toBe(1)
    expect(stderr).toEqual([`gangway: cannot listen on 127.0.0.1:${port}: address already in use`])
  })
})

describe('gangway signals', () => {
  it('on SIGTERM stops accepting, lets a live tunnel finish, then exits 0', async () => {
    const { proc, url } = await startDaemon()
    const ws = await openWs(disposer, url)
    expect(await roundTrip(ws, 'before')).toBe('before')

    proc.child.kill('SIGTERM')
    const draining = await proc.waitForLog((r) => r.msg === 'draining' && r['signal'] === 'SIGTERM')
    expect(draining['tunnels']).toBe(1)
    expect((await connectError(url)).code).toBe('ECONNREFUSED')
    expect(await roundTrip(ws, 'still relaying')).toBe('still relaying')

    ws.close()
    const exit = await proc.exited
    expect(exit).toEqual({ code: 0, signal: null })
    expect(proc.stdout.map((line) => (JSON.parse(line) as LogRecord).msg)).toContain('stopped')
  })

  it('closes tunnels still open after --drain-timeout with 1001, then exits 0', async () => {
    const { proc, url } = await startDaemon(['--drain-timeout', '0.5'])
    const ws = await openWs(disposer, url)
    expect(await roundTrip(ws, 'hello')).toBe('hello')
    const closing = closed(ws)
    proc.child.kill('SIGTERM')
    expect((await closing).code).toBe(1001)
    expect(await proc.exited).toEqual({ code: 0, signal: null })
  })

  it('exits 0 at once on SIGINT when no tunnel is open', async () => {
    const { proc } = await startDaemon()
    proc.child.kill('SIGINT')
    await proc.waitForLog((r) => r.msg === 'draining' && r['signal'] === 'SIGINT')
    expect(await proc.exited).toEqual({ code: 0, signal: null })
  })

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('a second %s during the drain exits at once with %d', async (signal, code) => {
    const { proc, url } = await startDaemon()
    const ws = await openWs(disposer, url)
    expect(await roundTrip(ws, 'hold on')).toBe('hold on')
    proc.child.kill(signal)
    await proc.waitForLog((r) => r.msg === 'draining')
    proc.child.kill(signal)
    expect(await proc.exited).toEqual({ code, signal: null })
  })
})

describe('gangway demo', () => {
  it('starts the chat demo behind the gateway and serves its page', async () => {
    const proc = spawnGangway(disposer, ['demo', '127.0.0.1:0', '--log-format', 'json'])
    const listening = await proc.waitForLog(isListening)
    expect(listening['target']).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(listening['web']).toBe(join(REPO_ROOT, 'web/demo'))
    const port = portOf(listening['listen'])
    const ready = await proc.waitForLog((r) => typeof r['url'] === 'string')
    expect(ready['url']).toBe(`http://127.0.0.1:${port}/`)
    expect(ready.msg).toContain(`open http://127.0.0.1:${port}/`)
    const page = await fetch(`http://127.0.0.1:${port}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    proc.child.kill('SIGTERM')
    expect(await proc.exited).toEqual({ code: 0, signal: null })
  })
})
