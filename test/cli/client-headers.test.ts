/**
 * `gangway client --origin` and `--header`: native tools through a daemon that has `allowedOrigins` (which
 * refused every `gangway client` with 4403 before), extra headers for a proxy in front of the daemon, and
 * header values that never reach a log line or an error message. Real daemon and client processes.
 */
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import type { IncomingHttpHeaders } from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { portOf, runGangway, runStdioClient, spawnGangway } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'client-origin-token-0123'
const ORIGIN = 'https://app.example.com'
const SECRETS = [
  'Basic c2VjcmV0LXVzZXI6czNjcjN0',
  'api-key-value-9f8e7d',
  'session=cookie-value-77',
]

/** A daemon whose tokens may only be used from ORIGIN; returns its URL and a token file. */
async function startDaemon(): Promise<{ url: string; tokenFile: string }> {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const dir = await tempDir(d)
  const tokenFile = join(dir, 'token')
  await writeFile(join(dir, 'tokens'), `${TOKEN}: 127.0.0.1:${echo.port}\n`)
  await writeFile(tokenFile, TOKEN + '\n')
  const proc = spawnGangway(d, [
    '--log-format=json',
    `--token-file=${join(dir, 'tokens')}`,
    `--allowed-origins=${ORIGIN}`,
    '127.0.0.1:0',
  ])
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  return { url: `ws://127.0.0.1:${portOf(listening['listen'])}/`, tokenFile }
}

function stdioClient(args: string[], input: Buffer | string) {
  return runStdioClient(d, args, input)
}

describe('gangway client --origin, against a daemon with allowedOrigins', () => {
  it('is refused without --origin (with a hint), tunnels with an allowed one, names a refused one', async () => {
    const daemon = await startDaemon()
    const base = ['--url', daemon.url, '--token-file', daemon.tokenFile]

    const without = await stdioClient(base, 'x')
    expect(without.code).toBe(1)
    expect(without.stderr).toHaveLength(1)
    expect(without.stderr[0]).toMatch(/^gangway client: forbidden \(.*403\).*give --origin/)

    const allowed = await stdioClient([...base, '--origin', ORIGIN], 'through the allow-list')
    expect(allowed.stderr).toEqual([])
    expect(allowed.code).toBe(0)
    expect(allowed.stdout.toString()).toBe('through the allow-list')

    // The same origin written the way a browser would not (case, default port) is sent as a browser would.
    const spelled = await stdioClient([...base, '--origin', 'HTTPS://App.Example.com:443'], 'ok')
    expect(spelled.stdout.toString()).toBe('ok')

    const other = await stdioClient([...base, '--origin', 'https://evil.example'], 'x')
    expect(other.code).toBe(1)
    expect(other.stderr[0]).toMatch(/forbidden .*the origin https:\/\/evil\.example/)
  })
})

describe('gangway client --header', () => {
  it('sends every header to the gateway, and logs their names, never their values', async () => {
    // A stand-in for an authenticating proxy: records the handshake's headers, then refuses it.
    const seen: IncomingHttpHeaders[] = []
    const gateway = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (info, done) => {
        seen.push(info.req.headers)
        done(false, 401)
      },
    })
    await once(gateway, 'listening')
    d.add(() => new Promise<void>((resolve) => gateway.close(() => resolve())))
    const port = (gateway.address() as { port: number }).port
    const dir = await tempDir(d)
    const headerFile = join(dir, 'headers')
    await writeFile(headerFile, `# for the proxy\nCookie: ${SECRETS[2]}\n\n`)
    const client = spawnGangway(d, [
      'client',
      '--url',
      `ws://127.0.0.1:${port}/`,
      '--listen',
      '127.0.0.1:0',
      '--log-format=json',
      '--token',
      TOKEN,
      '--token-in',
      'subprotocol',
      '--origin',
      ORIGIN,
      '--header',
      `Authorization: ${SECRETS[0]}`,
      '--header',
      `X-Api-Key:${SECRETS[1]}`,
      '--header',
      `@${headerFile}`,
    ])
    const listening = await client.waitForLog((r) => r.msg === 'client listening')
    expect(listening).toMatchObject({
      origin: ORIGIN,
      headers: ['Authorization', 'X-Api-Key', 'Cookie'],
    })
    const local = net.connect(portOf(listening['listen']), '127.0.0.1')
    local.on('error', () => {})
    d.add(() => local.destroy())
    await client.waitForLog((r) => r.level === 'warn')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({
      authorization: SECRETS[0],
      'x-api-key': SECRETS[1],
      cookie: SECRETS[2],
      origin: ORIGIN,
    })
    const printed = [...client.stdout, ...client.stderr].join('\n')
    for (const secret of [...SECRETS, TOKEN]) expect(printed).not.toContain(secret)
  })

  it('refuses a malformed or clashing header with one line (exit 2) that never shows its value', async () => {
    const url = 'ws://127.0.0.1:9/'
    const cases: Array<[string[], RegExp]> = [
      [['--header', `Authorization ${SECRETS[0]}`], /--header #1: expected NAME:VALUE/],
      [
        ['--header', `X-Key: ${SECRETS[1]}\r\nX-Injected: 1`],
        /X-Key\): the value contains a line break/,
      ],
      [['--header', `Sec-WebSocket-Key: ${SECRETS[1]}`], /set by the WebSocket handshake/],
      [['--header', `X-Key: ${SECRETS[1]}\u2713`], /beyond Latin-1/],
      [
        ['--header', `X-A: 1`, '--header', `x-a: ${SECRETS[1]}`],
        /--header #2 \(x-a\): given twice/,
      ],
      [
        ['--token', TOKEN, '--header', `Authorization: ${SECRETS[0]}`],
        /already travels in Authorization; with --token-in subprotocol/,
      ],
      [['--origin', 'https://app.example.com/login'], /--origin: expected an origin/],
      [['--origin', ORIGIN, '--header', `Origin: ${ORIGIN}`], /--origin gives it/],
      [['--header', '@/nonexistent/headers'], /--header @\/nonexistent\/headers: cannot read it/],
    ]
    for (const [args, message] of cases) {
      const result = await runGangway(d, ['client', '--stdio', '--url', url, ...args])
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr.join('\n')).toMatch(message)
      const printed = [...result.stdout, ...result.stderr].join('\n')
      for (const secret of SECRETS) expect(printed).not.toContain(secret)
    }
  })
})
