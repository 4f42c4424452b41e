import { afterEach, describe, expect, it } from 'vitest'
import { createAdminServer } from '../../src/ops/admin.js'
import { createMetrics } from '../../src/ops/metrics.js'
import { launchBrowser } from '../helpers/browser.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'status-page-token-for-tests'

describe('live status page in Chromium', () => {
  it('shows live tunnels after the token is entered, updates as they come, and closes one on click', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const metrics = createMetrics({ defaultMetrics: false })
    const admin = createAdminServer({ kind: 'tcp', host: '127.0.0.1', port: 0 }, server, metrics, {
      token: TOKEN,
    })
    await admin.listen()
    d.add(() => admin.close())
    const base = `http://127.0.0.1:${(admin.address() as { port: number }).port}`

    const browser = await launchBrowser(d)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await page.goto(`${base}/status`)

    await page.fill('#token', 'wrong-token-wrong-token')
    await page.click('button[type=submit]')
    await page.locator('#state', { hasText: 'not accepted' }).waitFor()

    await page.fill('#token', TOKEN)
    await page.click('button[type=submit]')
    await page.locator('#state', { hasText: '0 tunnel(s) open' }).waitFor()

    // A tunnel opened after the page loaded appears without a reload.
    const ws = await openWs(d, server.url())
    ws.send(Buffer.alloc(2048, 1))
    const row = page.locator('#tunnels tr', { hasText: `127.0.0.1:${echo.port}` })
    await row.waitFor()
    await page.locator('#tunnels td', { hasText: '2.0 KiB' }).first().waitFor()
    await page.locator('#routes tr', { hasText: 'default' }).waitFor()

    const wsClosed = closed(ws)
    await row.locator('button.close').click()
    expect(await wsClosed).toEqual({ code: 4410, reason: 'closed by an operator' })
    await page.locator('#tunnels td.empty').waitFor()
    await page.screenshot({ path: '/tmp/gangway-status.png' })
    expect(errors).toEqual([])
  })
})
