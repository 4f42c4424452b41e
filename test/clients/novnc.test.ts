/**
 * noVNC, unmodified, in Chromium, through TunnelWebSocket and a real daemon to a real Xvnc: the RFB
 * handshake completes and the remote desktop (the stipple root window) is drawn on noVNC's canvas.
 */
import { cp, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { launchBrowser, networkChanges } from '../helpers/browser.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { DESKTOP_DRAWN, startXvnc } from '../helpers/xvnc.js'

const SCREENSHOT_PATH = '/tmp/gangway-novnc.png'
const NOVNC = join(import.meta.dirname, '../../node_modules/@novnc/novnc')

const d = createDisposer()
afterEach(() => d.run())

const PAGE = `<!doctype html>
<html><body style="margin:0">
<div id="screen" style="width:640px;height:480px"></div>
<script type="module">
import RFB from './novnc/core/rfb.js'
import { TunnelWebSocket } from '/gangway.js'
const channel = new TunnelWebSocket('', { url: 'ws://' + location.host + '/' })
const rfb = new RFB(document.getElementById('screen'), channel)
document.body.dataset.state = 'connecting'
rfb.addEventListener('connect', () => (document.body.dataset.state = 'connected'))
rfb.addEventListener('disconnect', (e) => (document.body.dataset.state = 'disconnected'))
window.rfb = rfb
</script>
</body></html>`

describe('noVNC through the shim', () => {
  it('connects to a real Xvnc and draws its desktop', async () => {
    const vnc = await startXvnc()
    d.add(() => vnc.close())
    const root = await tempDir(d, 'gangway-novnc-')
    await cp(join(NOVNC, 'core'), join(root, 'novnc/core'), { recursive: true })
    await cp(join(NOVNC, 'vendor'), join(root, 'novnc/vendor'), { recursive: true })
    await writeFile(join(root, 'index.html'), PAGE)
    const server = await startTunnel(d, tcpTarget(vnc.port), { webRoot: root })

    const browser = await launchBrowser(d)
    let page = await browser.newPage()
    let errors: string[] = []
    // A page whose module loads Chromium aborted (a host network change, see networkChanges) is loaded
    // again, at most three times; anything else fails at once.
    for (let attempt = 1; ; attempt++) {
      errors = []
      page.on('pageerror', (err) => errors.push(err.message))
      const changes = networkChanges(page)
      await page.goto(server.url().replace(/^ws/, 'http'))
      const connected = page.locator('body[data-state="connected"]').waitFor()
      const outcome = await Promise.race([
        connected.then(() => 'connected' as const),
        changes.next.then(() => 'network changed' as const),
      ])
      if (outcome === 'connected') break
      connected.catch(() => undefined)
      if (attempt === 3) throw new Error('Chromium saw the network change on three page loads')
      await page.close()
      page = await browser.newPage()
    }
    const canvas = page.locator('#screen canvas')
    // The framebuffer arrives after the handshake: wait until the canvas shows the stipple, then check it.
    await page.waitForFunction(DESKTOP_DRAWN)
    expect(await canvas.boundingBox()).toMatchObject({ width: 640, height: 480 })
    const png = await canvas.screenshot({ path: SCREENSHOT_PATH })
    expect(png.length).toBeGreaterThan(1000)
    expect(errors).toEqual([])
  })
})
