/**
 * Launches Debian's Chromium (/usr/bin/chromium, installed by scripts/test-env.sh) through playwright-core,
 * headless, with a fresh profile directory that is removed on close. Never downloads a browser.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Disposer } from './disposer.js'

export const CHROMIUM_PATH = '/usr/bin/chromium'

export interface BrowserSession {
  context: BrowserContext
  newPage(): Promise<Page>
  /** Closes the browser and deletes its profile directory. */
  close(): Promise<void>
}

/** Starts Chromium and registers its shutdown with the disposer. */
export async function launchBrowser(disposer: Disposer): Promise<BrowserSession> {
  const profile = await mkdtemp(join(tmpdir(), 'gangway-chromium-'))
  disposer.add(() => rm(profile, { recursive: true, force: true, maxRetries: 3 }))
  // launchPersistentContext is playwright's way to pass --user-data-dir (it refuses the raw flag).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  disposer.add(() => context.close())
  // Playwright's 30 s default is too tight on a busy machine (a 3x slower suite): wait on events with a
  // generous bound, inside the test's own 120 s.
  context.setDefaultTimeout(90_000)
  return {
    context,
    newPage: () => context.newPage(),
    close: () => context.close(),
  }
}

/**
 * Counts requests Chromium aborted with `net::ERR_NETWORK_CHANGED`. Chromium watches the host's network
 * interfaces (netlink) and aborts every request in flight when one appears or goes (another process on a
 * shared machine starting a container is enough), loopback included: a page whose module graph was cut
 * that way never runs, whatever Gangway does. A test may load such a page again.
 */
export function networkChanges(page: Page): { count(): number; next: Promise<void> } {
  let count = 0
  let seen: () => void = () => {}
  const next = new Promise<void>((resolve) => (seen = resolve))
  page.on('requestfailed', function pageOnRequestFailed(request) {
    if (request.failure()?.errorText !== 'net::ERR_NETWORK_CHANGED') return
    count++
    seen()
  })
  return { count: () => count, next }
}
