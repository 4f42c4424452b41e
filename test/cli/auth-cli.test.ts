import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { runGangway, spawnGangway } from './gangway-process.js'

const disposer = createDisposer()
afterEach(() => disposer.run())

describe('gangway with tokens', () => {
  it('exits 2 with one line naming the file and line of a bad token file', async () => {
    const dir = await tempDir(disposer, 'gangway-auth-cli-')
    const file = join(dir, 'tokens')
    await writeFile(file, 'ok: 127.0.0.1:5900\n\nbad:127.0.0.1:5900\n')
    const { code, stderr } = await runGangway(disposer, ['--token-file', file, '127.0.0.1:0'])
    expect(code).toBe(2)
    expect(stderr).toEqual([expect.stringContaining(`gangway: token file ${file}:3: expected`)])
  })

  it('exits 2 when a TARGET is combined with tokens, and says what to do instead', async () => {
    const dir = await tempDir(disposer, 'gangway-auth-cli-')
    const file = join(dir, 'tokens')
    await writeFile(file, 'ok: 127.0.0.1:5900\n')
    const { code, stderr } = await runGangway(disposer, [
      '--token-file',
      file,
      '127.0.0.1:0',
      '127.0.0.1:5900',
    ])
    expect(code).toBe(2)
    expect(stderr).toEqual([expect.stringMatching(/TARGET cannot be combined with tokens.*route/)])
  })
})

describe('websockify token flags', () => {
  it('accepts --token-plugin TokenFile --token-source FILE --host-token as websockify does', async () => {
    const dir = await tempDir(disposer, 'gangway-auth-cli-')
    const file = join(dir, 'tokens')
    await writeFile(file, 'vnc: 127.0.0.1:5900\n')
    const proc = spawnGangway(disposer, [
      '--token-plugin',
      'TokenFile',
      '--token-source',
      file,
      '--host-token',
      '127.0.0.1:0',
    ])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    expect(listening['tokenFile']).toBe(file)
  })
})
