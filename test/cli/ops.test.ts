import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { makeCert } from '../helpers/certs.js'
import { startEchoServer } from '../helpers/tcp.js'
import { openWs } from '../helpers/ws.js'
import { portOf, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const isListening = (r: LogRecord): boolean => r.msg === 'listening'

async function echoPort(): Promise<number> {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  return echo.port
}

describe('gangway --cert/--key/--admin', () => {
  it.each([
    [['--key', '/x.key'], 'gangway: --key needs --cert (the certificate to serve)'],
    [['--tls-ciphers', 'HIGH'], 'gangway: --tls-ciphers needs --cert'],
    [['--admin', 'nope'], /^gangway: --admin "nope"/],
    [
      ['--cert', '/nonexistent.pem'],
      'gangway: cannot read TLS certificate /nonexistent.pem (ENOENT)',
    ],
    [
      ['--admin-token-file', '/etc/hostname'],
      'gangway: an admin token (--admin-token-file, GANGWAY_ADMIN_TOKEN) needs --admin',
    ],
    [
      ['--admin', '0', '--admin-token-file', '/nonexistent/token'],
      'gangway: --admin-token-file /nonexistent/token: cannot read the file (ENOENT)',
    ],
  ])('%j is a usage error: exit 2 and one line', async (args, message) => {
    const result = await runGangway(d, [...args, '127.0.0.1:0', '127.0.0.1:9'])
    expect(result.code).toBe(2)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(message)
  })

  it('serves metrics and readiness on the admin address (loopback for a bare port), /readyz 503 while draining', async () => {
    const proc = spawnGangway(d, [
      '--log-format',
      'json',
      '--admin',
      '0',
      '127.0.0.1:0',
      `127.0.0.1:${await echoPort()}`,
    ])
    const listening = await proc.waitForLog(isListening)
    expect(listening['admin']).toMatch(/^127\.0\.0\.1:\d+$/)
    const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
    const ws = await openWs(d, `ws://127.0.0.1:${portOf(listening['listen'])}/`)
    expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(
      /^gangway_tunnels_active\{route="default"\} 1$/m,
    )

    proc.child.kill('SIGTERM')
    await proc.waitForLog((r) => r.msg === 'draining')
    expect((await fetch(`${admin}/readyz`)).status).toBe(503)
    ws.close()
    expect((await proc.exited).code).toBe(0)
  })

  it('reloads the certificate on SIGHUP', async () => {
    const dir = await tempDir(d, 'gangway-cli-tls-')
    const cert = await makeCert(dir, 'cli')
    const proc = spawnGangway(d, [
      '--log-format',
      'json',
      '--cert',
      cert.cert,
      '--key',
      cert.key,
      '127.0.0.1:0',
      `127.0.0.1:${await echoPort()}`,
    ])
    const listening = await proc.waitForLog(isListening)
    expect(listening['tls']).toBe(true)
    proc.child.kill('SIGHUP')
    await proc.waitForLog((r) => r.msg === 'tls certificate reloaded')
    const ws = await openWs(d, `wss://127.0.0.1:${portOf(listening['listen'])}/`, { ca: cert.pem })
    ws.close()
    proc.child.kill('SIGTERM')
    expect((await proc.exited).code).toBe(0)
  })
})
