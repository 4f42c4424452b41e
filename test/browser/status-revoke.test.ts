/**
 * "Revoke token" on the status page, in Chromium against a real daemon (`bin/gangway.js`) sharing state
 * through a real Redis: click, confirm, the token's tunnel closes with 4410 and the token is refused from
 * then on; "Undo" ends the revocation and the token is accepted again. Without `--state-redis` the page
 * offers no revocation.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { fingerprint } from '../../src/log.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'
import { launchBrowser } from '../helpers/browser.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer, type TcpServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const ADMIN_TOKEN = 'status-page-admin-token-for-tests'
const TOKEN = 'tunnel-token-to-be-revoked'

let redis: ContainerService
let redisUrl: string
let echo: TcpServer

beforeAll(async () => {
  redis = await startRedis()
  redisUrl = `redis://${redis.host}:${redis.port}/0`
  echo = await startEchoServer()
}, 120_000)

afterAll(async () => {
  await echo?.close()
  await redis?.stop()
})

/** A daemon with a token file and the admin listener; `extra` adds flags (`--state-redis`). */
async function startDaemon(extra: string[]): Promise<{ url: string; status: string }> {
  const dir = await tempDir(d)
  await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
  await writeFile(join(dir, 'tokens'), `${TOKEN}: 127.0.0.1:${echo.port}\n`)
  const proc = spawnGangway(d, [
    ...extra,
    '--log-format=json',
    `--token-file=${join(dir, 'tokens')}`,
    '--admin=127.0.0.1:0',
    `--admin-token-file=${join(dir, 'admin-token')}`,
    '127.0.0.1:0',
  ])
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  return {
    url: `ws://127.0.0.1:${portOf(listening['listen'])}/`,
    status: `http://127.0.0.1:${portOf(listening['admin'])}/status`,
  }
}

/** Waits (bounded) until the daemon listens on the revocation channel, so that it hears the revocation. */
async function waitForSubscriber(): Promise<number> {
  const client = new Redis({ host: redis.host, port: redis.port, lazyConnect: true })
  await client.connect()
  d.add(() => client.disconnect())
  let got = 0
  const deadline = Date.now() + 10_000
  for (let i = 0; i < 10_000 && got === 0 && Date.now() < deadline; i++) {
    const answer = (await client.pubsub('NUMSUB', 'gangway:revocations')) as [string, number]
    got = Number(answer[1])
  }
  return got
}

describe('status page: revoking a token', () => {
  it('revokes the token of a tunnel after a confirmation, on a daemon with shared state', async () => {
    const daemon = await startDaemon([`--state-redis=${redisUrl}`])
    expect(await waitForSubscriber()).toBe(1)
    const browser = await launchBrowser(d)
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    await page.goto(daemon.status)
    await page.fill('#token', ADMIN_TOKEN)
    await page.click('button[type=submit]')
    await page.locator('#state', { hasText: '0 tunnel(s) open' }).waitFor()

    const ws = await openWs(d, `${daemon.url}?token=${TOKEN}`)
    const row = page.locator('#tunnels tr', { hasText: `127.0.0.1:${echo.port}` })
    await row.waitFor()
    const revoke = row.locator('button.revoke')
    expect(await revoke.getAttribute('data-fingerprint')).toBe(fingerprint(TOKEN))

    // A stray click only opens the confirmation; cancelling it revokes nothing.
    await revoke.click()
    const dialog = page.locator('#confirm-revoke')
    await dialog.locator('button[value=cancel]').click()
    await page.locator('#confirm-revoke:not([open])').waitFor({ state: 'attached' })
    expect(await page.locator('#outcome').isHidden()).toBe(true)
    expect(ws.readyState).toBe(ws.OPEN)

    const wsClosed = closed(ws)
    await row.locator('button.revoke').click()
    await dialog.locator('#confirm-text', { hasText: fingerprint(TOKEN) }).waitFor()
    await dialog.locator('button[value=revoke]').click()
    expect(await wsClosed).toEqual({ code: 4410, reason: 'token revoked' })
    await page
      .locator('#outcome', {
        hasText: `Token ${fingerprint(TOKEN)} revoked for 604800 s; 1 process(es) notified.`,
      })
      .waitFor()
    await page.locator('#tunnels td.empty').waitFor()
    expect(await connectAndClose(`${daemon.url}?token=${TOKEN}`)).toMatchObject({ code: 4401 })

    // A mis-click is undone from the outcome line: the token is accepted again at once.
    await page.locator('#outcome button.undo').click()
    await page
      .locator('#outcome', {
        hasText: `Revocation of token ${fingerprint(TOKEN)} undone; 1 process(es) notified.`,
      })
      .waitFor()
    expect(await page.locator('#outcome button.undo').count()).toBe(0)
    const back = await openWs(d, `${daemon.url}?token=${TOKEN}`)
    await row.waitFor()
    back.close()
    // The page showed the fingerprint only, never the token.
    expect(await page.content()).not.toContain(TOKEN)
    await page.screenshot({ path: '/tmp/gangway-status-revoke.png' })
    expect(errors).toEqual([])
  })

  it('offers no revocation without shared state', async () => {
    const daemon = await startDaemon([])
    const browser = await launchBrowser(d)
    const page = await browser.newPage()
    await page.goto(daemon.status)
    await page.fill('#token', ADMIN_TOKEN)
    await page.click('button[type=submit]')
    const ws = await openWs(d, `${daemon.url}?token=${TOKEN}`)
    const row = page.locator('#tunnels tr', { hasText: `127.0.0.1:${echo.port}` })
    await row.waitFor()
    // Both buttons are rendered together, so the row being there means the revoke button would be too.
    expect(await row.locator('button.close').count()).toBe(1)
    expect(await page.locator('button.revoke').count()).toBe(0)
    ws.close()
  })
})
