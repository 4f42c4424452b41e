import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { main } from '../../src/commands/cli.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'

const disposer = createDisposer()
afterEach(() => disposer.run())

/** Resolves when someone adds a listener for `event` on `process`. */
function listenerAdded(event: string): Promise<void> {
  return new Promise((resolve) => {
    function processOnNewListener(name: string | symbol): void {
      if (name !== event) return
      process.off('newListener', processOnNewListener)
      resolve()
    }
    process.on('newListener', processOnNewListener)
    disposer.add(() => process.off('newListener', processOnNewListener))
  })
}

describe('main() in-process', () => {
  it('drains on SIGTERM, resolves 0 and leaves no signal listeners behind', async () => {
    const dir = await tempDir(disposer, 'gangway-main-')
    const socket = join(dir, 'g.sock')
    const before = { term: process.listenerCount('SIGTERM'), int: process.listenerCount('SIGINT') }

    const registered = listenerAdded('SIGINT')
    const exitCode = main(['--log-level', 'silent', `unix:${socket}`, '127.0.0.1:1'])
    await registered
    process.emit('SIGTERM', 'SIGTERM')

    expect(await exitCode).toBe(0)
    expect(process.listenerCount('SIGTERM')).toBe(before.term)
    expect(process.listenerCount('SIGINT')).toBe(before.int)
    // The unix socket was created while listening and removed on close.
    await expect(access(socket)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
