import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { launchBrowser } from '../helpers/browser.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import type { TunnelServer } from '../../src/gateway/server.js'

const d = createDisposer()
afterEach(() => d.run())

const MiB = 1024 * 1024

/** Runs `body` (plain JS, an async function body with `gangway` = the imported /gangway.js) in a Chromium page on the daemon's origin. */
async function runInPage(server: TunnelServer, body: string, arg: unknown): Promise<unknown> {
  const browser = await launchBrowser(d)
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(server.url().replace(/^ws/, 'http') + 'healthz')
  // A string, so the test runner's transform cannot rewrite the dynamic import.
  const script = `(async (arg) => { const gangway = await import('/gangway.js'); ${body} })(${JSON.stringify(arg)})`
  const result = await page.evaluate(script)
  expect(errors).toEqual([])
  return result
}

const TRANSFER = `
  const socket = gangway.connect('', { url: 'ws://' + location.host + '/' })
  const info = await socket.opened
  // A deterministic byte stream (xorshift) and a running FNV-1a checksum on each side.
  const checksum = () => {
    let h = 0x811c9dc5
    return {
      add(bytes) { for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) },
      value: () => h >>> 0,
    }
  }
  const sent = checksum()
  const got = checksum()
  const writer = socket.writable.getWriter()
  const writing = (async () => {
    let x = 2463534242
    for (let at = 0; at < arg; ) {
      const chunk = new Uint8Array(Math.min(arg - at, 1 + ((at * 31) % 100000)))
      for (let i = 0; i < chunk.length; i++) {
        x ^= x << 13; x ^= x >>> 17; x ^= x << 5
        chunk[i] = x & 0xff
      }
      sent.add(chunk)
      await writer.write(chunk)
      at += chunk.length
    }
    await writer.close()
  })()
  let received = 0
  const reader = socket.readable.getReader()
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    received += r.value.length
    got.add(r.value)
  }
  await writing
  await socket.closed
  return { protocol: info.protocol, received, sent: sent.value(), got: got.value() }
`

const REFUSED = `
  try {
    await gangway.connect('', { url: 'ws://' + location.host + '/' }).opened
    document.body.textContent = 'connected?!'
  } catch (e) {
    document.body.textContent = [e instanceof gangway.TunnelError, e.code, e.closeCode, e.reason].join(' ')
  }
  return document.body.textContent
`

describe('the browser library in Chromium, loaded from the daemon', () => {
  it('moves 64 MiB each way through an echo target with matching checksums', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const result = (await runInPage(server, TRANSFER, 64 * MiB)) as Record<string, unknown>
    expect(result.protocol).toBe('gangway.v1')
    expect(result.received).toBe(64 * MiB)
    expect(result.got).toBe(result.sent)
  })

  it('shows a typed TunnelError for a refused target', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    expect(await runInPage(server, REFUSED, null)).toBe(
      'true TARGET_REFUSED 4502 target refused the connection',
    )
  })
})
