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
  return {
    context,
    newPage: () => context.newPage(),
    close: () => context.close(),
  }
}
