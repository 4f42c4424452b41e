import { connect } from 'node:net'
import type { Page } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'
import { DEMO_WEB_ROOT, startDemoService } from '../../src/commands/demo-service.js'
import { launchBrowser } from '../helpers/browser.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTunnel } from '../helpers/tunnel.js'

const SCREENSHOT_PATH = '/tmp/gangway-demo.png'

const disposer = createDisposer()
afterEach(() => disposer.run())

async function counter(page: Page, id: string): Promise<number> {
  return Number((await page.locator(`#${id}`).textContent())?.replaceAll(',', ''))
}

async function logLine(page: Page, text: string): Promise<void> {
  await page.locator('#log li', { hasText: text }).first().waitFor()
}

describe('demo page in Chromium', () => {
  it('chats with the TCP service through Gangway and reports the close code', async () => {
    const service = await startDemoService()
    disposer.add(() => service.close())
    const tunnel = await startTunnel(disposer, service.target, { webRoot: DEMO_WEB_ROOT })
    const address = tunnel.address()
    if (address.kind !== 'tcp') throw new Error('expected a TCP listener')
    const origin = `http://127.0.0.1:${address.port}`

    const browser = await launchBrowser(disposer)
    const page = await browser.newPage()
    const requested: string[] = []
    const pageErrors: string[] = []
    page.on('request', (request) => requested.push(request.url()))
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text())
    })

    await page.goto(`${origin}/`)
    const status = page.locator('#status')
    await page.locator('#status[data-state="open"]').waitFor()
    expect(await status.textContent()).toContain('TCP connected through Gangway')
    await logLine(page, 'welcome, guest-1!')
    const downAfterWelcome = await counter(page, 'bytes-down')
    expect(downAfterWelcome).toBeGreaterThan(0)
    expect(await counter(page, 'bytes-up')).toBe(0)

    // A plain TCP client in the same room: the service cannot tell it from the browser.
    const peer = connect(service.target.port, service.target.host)
    disposer.add(() => peer.destroy())
    let heard = ''
    peer.setEncoding('utf8')
    const peerHeardBrowser = new Promise<void>((resolve) => {
      peer.on('data', (text: string) => {
        heard += text
        if (heard.includes('guest-1: hello from chromium ✓\n')) resolve()
      })
    })
    await logLine(page, 'guest-2 joined')

    await page.locator('#line').fill('hello from chromium ✓')
    await page.locator('#line').press('Enter')
    await logLine(page, 'guest-1: hello from chromium ✓')
    await peerHeardBrowser
    expect(await counter(page, 'bytes-up')).toBe(Buffer.byteLength('hello from chromium ✓\n'))
    expect(await page.locator('#line').inputValue()).toBe('')

    peer.write('hi from TCP\n')
    await logLine(page, 'guest-2: hi from TCP')
    expect(await counter(page, 'bytes-down')).toBeGreaterThan(downAfterWelcome)

    await page.screenshot({ path: SCREENSHOT_PATH, fullPage: true })

    await service.close()
    await page.locator('#status[data-state="closed"]').waitFor()
    expect(await status.textContent()).toMatch(/^Closed: 1000 \(normal/)
    expect(await page.locator('#line').isDisabled()).toBe(true)

    // Reconnecting while the service is down: Gangway upgrades, fails to dial, and says why.
    await page.locator('#reconnect').click()
    await page.locator('#status[data-state="closed"]').waitFor()
    expect(await status.textContent()).toMatch(/^Closed: 4502 \(the chat service refused/)

    expect(pageErrors).toEqual([])
    expect(requested.every((url) => url.startsWith(`${origin}/`))).toBe(true)
    expect(requested).toContain(`${origin}/demo.js`)
  })

  it('fits a 375 px wide phone screen: no horizontal overflow, even with a long chat line', async () => {
    const service = await startDemoService()
    disposer.add(() => service.close())
    const tunnel = await startTunnel(disposer, service.target, { webRoot: DEMO_WEB_ROOT })
    const address = tunnel.address()
    if (address.kind !== 'tcp') throw new Error('expected a TCP listener')
    const browser = await launchBrowser(disposer)
    const page = await browser.newPage()
    await page.setViewportSize({ width: 375, height: 740 })
    await page.goto(`http://127.0.0.1:${address.port}/`)
    await page.locator('#status[data-state="open"]').waitFor()
    await page.locator('#line').fill('x'.repeat(120))
    await page.locator('#line').press('Enter')
    await logLine(page, 'guest-1: xxxx')
    const width = await page.evaluate('document.documentElement.scrollWidth')
    expect(width).toBeLessThanOrEqual(375)
  })
})
