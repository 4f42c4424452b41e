/**
 * A fresh temporary directory for one test, removed (with everything in it) by the disposer.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Disposer } from './disposer.js'

export async function tempDir(disposer: Disposer, prefix = 'gangway-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  disposer.add(() => rm(dir, { recursive: true, force: true }))
  return dir
}
