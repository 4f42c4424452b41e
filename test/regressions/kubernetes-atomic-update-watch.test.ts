/**
 * Found by review: token files and TLS certificates are watched through their directory, filtered by the
 * file's name. A Kubernetes ConfigMap or Secret volume updates differently: the file (`tokens`) is a
 * symlink into `..data/`, and kubelet swaps `..data` to a new timestamped directory (`..data_tmp` renamed
 * over `..data`), so the directory's events name `..data`, never `tokens`: an updated ConfigMap was never
 * reloaded (until a SIGHUP). Events for kubelet's `..`-prefixed entries now count as a change too.
 */
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { tokenFile } from '../../src/targets/token-file.js'
import { watchTlsFiles } from '../../src/gateway/tls.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

/** A volume as kubelet's atomic writer lays it out: `<name> -> ..data/<name>`, `..data -> ..<version>`. */
async function atomicVolume(files: Record<string, string>): Promise<{
  dir: string
  update(files: Record<string, string>): Promise<void>
  /** kubelet's first step alone: the new version's directory, `..data` not swapped yet. */
  stage(files: Record<string, string>): Promise<string>
  /** The second step: `..data` swapped to a staged version. */
  swap(name: string): Promise<void>
}> {
  const dir = await tempDir(d)
  let version = 0
  async function writeVersion(content: Record<string, string>): Promise<string> {
    const name = `..2026_11_21_00_00_0${++version}`
    await mkdir(join(dir, name))
    for (const [file, text] of Object.entries(content)) await writeFile(join(dir, name, file), text)
    return name
  }
  await symlink(await writeVersion(files), join(dir, '..data'))
  for (const file of Object.keys(files)) await symlink(join('..data', file), join(dir, file))
  async function swap(name: string): Promise<void> {
    await symlink(name, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  }
  return {
    dir,
    async update(content) {
      await swap(await writeVersion(content))
    },
    stage: writeVersion,
    swap,
  }
}

describe('regression: a Kubernetes ConfigMap/Secret volume update', () => {
  it('reloads a watched token file', async () => {
    const volume = await atomicVolume({ tokens: 'first-token-Aa11: 127.0.0.1:5901\n' })
    const logger = memoryLogger()
    const resolver = await tokenFile({ path: join(volume.dir, 'tokens'), watch: true, logger })
    d.add(() => resolver.close?.())
    expect(await resolver.resolve('second-token-Bb22', undefined as never)).toBeNull()
    const reloaded = logger.waitFor('token file reloaded')
    await volume.update({ tokens: 'second-token-Bb22: 127.0.0.1:5902\n' })
    await reloaded // never came before the fix
    expect((await resolver.resolve('second-token-Bb22', undefined as never))?.target).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 5902,
    })
  })

  it('a reload that reads the half-swapped volume is not reported as done (issue 13, suite under load)', async () => {
    // On a busy machine the debounce fired between kubelet's two steps: the reload read the old content,
    // logged "token file reloaded", and the resolver still answered with the old table.
    const volume = await atomicVolume({ tokens: 'first-token-Aa11: 127.0.0.1:5901\n' })
    const logger = memoryLogger()
    const resolver = await tokenFile({ path: join(volume.dir, 'tokens'), watch: true, logger })
    d.add(() => resolver.close?.())
    const unchanged = logger.waitFor('token file event: content unchanged')
    const staged = await volume.stage({ tokens: 'second-token-Bb22: 127.0.0.1:5902\n' })
    await unchanged // the event for the new version's directory was read: nothing changed yet
    expect(logger.lines.filter((l) => l.msg === 'token file reloaded')).toEqual([])
    const reloaded = logger.waitFor('token file reloaded')
    await volume.swap(staged)
    await reloaded
    expect((await resolver.resolve('second-token-Bb22', undefined as never))?.target).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 5902,
    })
  })

  it('notices a renewed certificate', async () => {
    const volume = await atomicVolume({ 'tls.crt': 'old cert', 'tls.key': 'old key' })
    let notify: () => void = () => {}
    const changed = new Promise<void>((resolve) => (notify = resolve))
    const stop = watchTlsFiles(
      {
        certFile: join(volume.dir, 'tls.crt'),
        keyFile: join(volume.dir, 'tls.key'),
        minVersion: 'TLSv1.2',
        ciphers: undefined,
      },
      notify,
    )
    d.add(stop)
    await volume.update({ 'tls.crt': 'new cert', 'tls.key': 'new key' })
    await changed // never came before the fix
  })
})
