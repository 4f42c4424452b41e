/**
 * Found by review: `gangway client` logged its `--url` as given, in the `client listening` line and in
 * every failure it explains (`cannot reach the gateway at <url>`). A websockify habit puts the token in
 * that URL (`wss://gw/?token=…`), so the token reached the client's log and stderr. The URL is now shown
 * with `token` parameters redacted, as the daemon shows request paths.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { freePort } from '../helpers/tcp.js'
import { BIN, portOf, spawnGangway } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'url-token-secret-Pv55'

describe('regression: a token in gangway client --url', () => {
  it('--listen: neither the listening line nor the failure line shows it', async () => {
    const url = `ws://127.0.0.1:${await freePort()}/?token=${SECRET}`
    const proc = spawnGangway(d, ['client', '--log-format', 'json', '--url', url, '--listen', '0'])
    const listening = await proc.waitForLog((r) => r.msg === 'client listening')
    expect(listening['url']).toMatch(/\?token=\[redacted\]$/)
    const local = net.connect(portOf(listening['listen']), '127.0.0.1')
    local.on('error', () => {})
    d.add(() => local.destroy())
    const failure = await proc.waitForLog((r) => r.level === 'warn' || r.level === '40')
    expect(failure.msg).toMatch(/^cannot reach the gateway at ws:\/\/.*token=\[redacted\]/)
    await once(local, 'close')
    expect([...proc.stdout, ...proc.stderr].join('\n')).not.toContain(SECRET)
  })

  it('--stdio: the one error line does not show it', async () => {
    const url = `ws://127.0.0.1:${await freePort()}/?token=${SECRET}`
    const child = spawn(process.execPath, [BIN, 'client', '--stdio', '--url', url], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    d.add(() => void child.kill('SIGKILL'))
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.stdin.on('error', () => {})
    child.stdin.end()
    const [code] = (await once(child, 'close')) as [number]
    expect(code).toBe(1)
    expect(stderr).toMatch(/cannot reach the gateway at ws:\/\/.*token=\[redacted\]/)
    expect(stderr).not.toContain(SECRET)
  })
})
