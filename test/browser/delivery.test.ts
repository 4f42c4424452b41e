/**
 * Issue 14's delivery property in Chromium (a smaller run than test/shim/delivery.property.test.ts): the
 * same scenarios, played by the page with the browser's own WebSocket and streams against /gangway.js,
 * each through a fresh daemon in front of a TCP sink. The page calls back into the test for credit stalls
 * and daemon-side closes.
 */
import { afterEach, describe, it } from 'vitest'
import fc from 'fast-check'
import { createDisposer } from '../helpers/disposer.js'
import { launchBrowser } from '../helpers/browser.js'
import { deliveryRig } from '../helpers/delivery-rig.js'
import {
  checkDelivery,
  runScenario,
  scenarios,
  writeBytes,
  type Hooks,
  type Played,
  type Scenario,
} from '../helpers/delivery.js'
import { startEchoServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { scale } from '../robust/scale.js'

const d = createDisposer()
afterEach(() => d.run())

describe('shim delivery property (Chromium)', () => {
  it('sink bytes == resolved writes on a clean end, a prefix on failure; every write settles', async () => {
    // The page's origin, where /gangway.js comes from; each scenario connects to its own daemon.
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const home = await startTunnel(d, tcpTarget(echo.port))
    const browser = await launchBrowser(d)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    let hooks: Hooks | undefined
    await page.exposeFunction('gangwayHook', (name: keyof Hooks) => hooks?.[name]())
    await page.goto(home.url().replace(/^ws/, 'http') + 'healthz')
    // Strings, so the test runner's transform cannot rewrite the dynamic import.
    const script = (url: string, sc: Scenario) => `(async () => {
      const gangway = await import('/gangway.js')
      const hook = (name) => () => window.gangwayHook(name)
      const hooks = { stall: hook('stall'), resume: hook('resume'), daemonClose: hook('daemonClose') }
      return (${runScenario.toString()})(gangway, { url: ${JSON.stringify(url)} }, ${JSON.stringify(sc)},
        hooks, ${writeBytes.toString()}, 90000)
    })()`
    await fc.assert(
      fc.asyncProperty(scenarios(8, 6 * 1024 * 1024), async (sc) => {
        const rig = await deliveryRig(d)
        hooks = rig.hooks
        const played = await page.evaluate<Played>(script(rig.url, sc))
        checkDelivery(sc, played, await rig.received())
      }),
      { numRuns: scale(15, 150) },
    )
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`)
  })
})
