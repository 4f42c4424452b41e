/**
 * The daemon logs in to a password-protected Xvnc (TigerVNC, `-SecurityTypes VncAuth -PasswordFile`) for the
 * client: noVNC, unmodified, in Chromium, draws the desktop with no password anywhere in the page; raw RFB
 * clients of 3.3, 3.7 and 3.8 see a server offering security type None; a wrong password is a 4502 refusal
 * whose log names the server's RFB reason.
 */
import { once } from 'node:events'
import { cp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import type WebSocket from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { launchBrowser } from '../helpers/browser.js'
import { createDisposer } from '../helpers/disposer.js'
import { daemonSurface, loginCount, startLoginDaemon } from '../helpers/login.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { DESKTOP_DRAWN, startXvnc, writeVncPasswordFile } from '../helpers/xvnc.js'

const d = createDisposer()
afterEach(() => d.run())

const PASSWORD = 'vnc-Pw8q' // VNC uses 8 bytes of a password
const NOVNC = join(import.meta.dirname, '../../node_modules/@novnc/novnc')

async function protectedXvnc() {
  const dir = await tempDir(d, 'gangway-xvnc-')
  const file = join(dir, 'passwd')
  writeVncPasswordFile(file, PASSWORD)
  const vnc = await startXvnc(640, 480, { passwordFile: file })
  d.add(() => vnc.close())
  return vnc
}

/** Reads exactly `n` bytes from a raw-mode tunnel. */
function reader(ws: WebSocket) {
  let held = Buffer.alloc(0)
  let wake: (() => void) | undefined
  ws.on('message', (m: Buffer) => {
    held = Buffer.concat([held, m])
    wake?.()
  })
  return async function read(n: number): Promise<Buffer> {
    while (held.length < n) await new Promise<void>((resolve) => (wake = resolve))
    const out = held.subarray(0, n)
    held = held.subarray(n)
    return out
  }
}

describe('vnc login', () => {
  it.each([
    ['RFB 003.008\n', '010100000000'],
    ['RFB 003.007\n', '0101'],
    ['RFB 003.003\n', '00000001'],
  ])(
    'shows a %j client a server with security None, then relays ServerInit',
    async (version, security) => {
      const vnc = await protectedXvnc()
      const daemon = await startLoginDaemon(
        d,
        `127.0.0.1:${vnc.port}`,
        { protocol: 'vnc' },
        PASSWORD,
      )
      let read: (n: number) => Promise<Buffer> = () => Promise.reject(new Error('not open'))
      const ws = await openWs(d, daemon.url, { beforeOpen: (w) => void (read = reader(w)) })
      expect((await read(12)).toString()).toMatch(/^RFB 003\.00[78]\n$/) // Xvnc's own version line
      ws.send(Buffer.from(version))
      const securityBytes = security.length / 2
      const offer = await read(version === 'RFB 003.003\n' ? 4 : 2)
      if (version !== 'RFB 003.003\n') ws.send(Buffer.from([1])) // choose None
      const result =
        securityBytes > offer.length ? await read(securityBytes - offer.length) : Buffer.alloc(0)
      expect(Buffer.concat([offer, result]).toString('hex')).toBe(security)
      ws.send(Buffer.from([1])) // ClientInit, shared
      const serverInit = await read(24)
      expect(serverInit.readUInt16BE(0)).toBe(640)
      expect(serverInit.readUInt16BE(2)).toBe(480)
      ws.close()
      await closed(ws)
      expect(await loginCount(daemon.metrics, 'vnc', 'ok')).toBe(1)
      const line = await daemon.logger.waitFor('logged in to the target')
      expect(line.fields).toMatchObject({ protocol: 'vnc', security: 'VncAuth' })
    },
  )

  it('refuses with 4502 on a wrong password; the log names the RFB failure reason', async () => {
    const vnc = await protectedXvnc()
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${vnc.port}`,
      { protocol: 'vnc' },
      'wrong-pw',
    )
    expect(await connectAndClose(daemon.url)).toMatchObject({
      code: 4502,
      reason: 'target login failed',
    })
    const refused = await daemon.logger.waitFor('tunnel refused')
    expect(String(refused.fields['reason'])).toMatch(
      /^vnc login to 127\.0\.0\.1:\d+ failed: vnc: authentication failed: "[^"]+"$/,
    )
    expect(await loginCount(daemon.metrics, 'vnc', 'refused')).toBe(1)
    expect(await daemonSurface(daemon)).not.toContain('wrong-pw')
  })

  it('refuses with 4502 a target that is not a VNC server', async () => {
    const web = createServer((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'))
    web.listen(0, '127.0.0.1')
    await once(web, 'listening')
    d.add(() => new Promise((r) => web.close(r)))
    const port = (web.address() as { port: number }).port
    const daemon = await startLoginDaemon(d, `127.0.0.1:${port}`, { protocol: 'vnc' }, PASSWORD)
    expect(await connectAndClose(daemon.url)).toMatchObject({ code: 4502 })
    const refused = await daemon.logger.waitFor('tunnel refused')
    expect(String(refused.fields['reason'])).toMatch(/the target is not an RFB server/)
    expect(await loginCount(daemon.metrics, 'vnc', 'error')).toBe(1)
  })
})

const PAGE = (url: string) => `<!doctype html>
<html><body style="margin:0">
<div id="screen" style="width:640px;height:480px"></div>
<script type="module">
import RFB from './novnc/core/rfb.js'
import { TunnelWebSocket } from '/gangway.js'
const channel = new TunnelWebSocket('', { url: ${JSON.stringify(url)} })
const rfb = new RFB(document.getElementById('screen'), channel)
document.body.dataset.state = 'connecting'
rfb.addEventListener('credentialsrequired', () => (document.body.dataset.state = 'asked-for-a-password'))
rfb.addEventListener('connect', () => (document.body.dataset.state = 'connected'))
rfb.addEventListener('disconnect', () => (document.body.dataset.state = 'disconnected'))
</script>
</body></html>`

describe('noVNC with a vnc login', () => {
  it('draws a password-protected Xvnc desktop; the page never holds the password', async () => {
    const vnc = await protectedXvnc()
    const root = await tempDir(d, 'gangway-novnc-login-')
    await cp(join(NOVNC, 'core'), join(root, 'novnc/core'), { recursive: true })
    await cp(join(NOVNC, 'vendor'), join(root, 'novnc/vendor'), { recursive: true })
    const daemon = await startLoginDaemon(
      d,
      `127.0.0.1:${vnc.port}`,
      { protocol: 'vnc' },
      PASSWORD,
      {
        webRoot: root,
      },
    )
    const wsUrl = daemon.url
    await writeFile(join(root, 'index.html'), PAGE(wsUrl))
    const browser = await launchBrowser(d)
    const page = await browser.newPage()
    const errors: string[] = []
    const frames: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    page.on('websocket', (socket) => {
      socket.on('framereceived', (f) => frames.push(Buffer.from(f.payload).toString('latin1')))
      socket.on('framesent', (f) => frames.push(Buffer.from(f.payload).toString('latin1')))
    })
    await page.goto(wsUrl.replace(/^ws/, 'http').replace(/\?.*$/, ''))
    await page.locator('body[data-state="connected"]').waitFor()
    await page.waitForFunction(DESKTOP_DRAWN)
    expect(errors).toEqual([])
    expect(await page.content()).not.toContain(PASSWORD)
    expect(frames.join('')).not.toContain(PASSWORD)
    expect(await daemonSurface(daemon)).not.toContain(PASSWORD)
    await page.close()
  })
})
