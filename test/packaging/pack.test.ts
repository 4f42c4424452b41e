/**
 * The package as a user gets it (issue 14): `npm pack`, the tarball unpacked into a fresh project's
 * node_modules, and the documented entry points imported from there by a separate Node program:
 * `gangway/web` (zero dependencies), `gangway/node` (node:stream only) and `gangway/gangway.min.js`. Also:
 * the tarball has the LICENSE and a `.d.ts` for every entry point, and in both tarballs (`gangway` and
 * `gangway-web`) every relative link of every shipped `.md` page resolves to a shipped file and heading.
 */
import { execFile } from 'node:child_process'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { brokenLinks } from '../helpers/markdown-links.js'
import { runModule } from '../helpers/node-program.js'

const run = promisify(execFile)
const d = createDisposer()
afterEach(() => d.run())

const root = fileURLToPath(new URL('../..', import.meta.url))

describe('npm pack', () => {
  it('installs from the tarball and the documented entry points import', async () => {
    const dir = join(root, `.tmp-pack-${process.pid}`)
    const modules = join(dir, 'node_modules', 'gangway')
    await mkdir(modules, { recursive: true })
    d.add(() => rm(dir, { recursive: true, force: true }))
    // --ignore-scripts: dist/ is built already (`prepare` would rebuild it).
    const { stdout } = await run(
      'npm',
      ['pack', '--ignore-scripts', '--json', '--pack-destination', dir],
      {
        cwd: root,
      },
    )
    const [packed] = JSON.parse(stdout) as Array<{
      filename: string
      files: Array<{ path: string }>
    }>
    const files = new Set(packed!.files.map((f) => f.path))
    expect(files.has('LICENSE')).toBe(true)
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types: string }>
    }
    for (const [entry, target] of Object.entries(pkg.exports))
      if (typeof target !== 'string') expect(files, entry).toContain(target.types.slice(2))
    await run('tar', ['-xzf', join(dir, packed!.filename), '-C', modules, '--strip-components=1'])
    expect(await brokenLinks(modules, [...files])).toEqual([])

    const program = `
      const web = await import('gangway/web')
      const node = await import('gangway/node')
      const min = await import('gangway/gangway.min.js')
      console.log(typeof web.connect, typeof web.TunnelWebSocket, typeof node.createNetSocket, typeof min.connect)
      const socket = web.connect('', { url: 'ws://127.0.0.1:9/' })
      const err = await socket.opened.catch((e) => e)
      console.log(err.code)
    `
    const { code, stdout: out, stderr } = await runModule(d, program, [], dir)
    expect(stderr).toBe('')
    expect(out.trim().split('\n')).toEqual(['function function function function', 'BAD_OPTION'])
    expect(code).toBe(0)
  }, 120_000)

  it('gangway-web: the shim alone, zero dependencies, core and Node adapter sharing one TunnelError', async () => {
    const dir = join(root, `.tmp-pack-web-${process.pid}`)
    const modules = join(dir, 'node_modules', 'gangway-web')
    await mkdir(modules, { recursive: true })
    d.add(() => rm(dir, { recursive: true, force: true }))
    const source = join(root, 'dist/gangway-web')
    const manifest = JSON.parse(await readFile(join(source, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >
    expect([manifest.name, manifest.dependencies, manifest.license]).toEqual([
      'gangway-web',
      undefined,
      'MIT',
    ])
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: source,
    })
    const [packed] = JSON.parse(stdout) as Array<{
      filename: string
      files: Array<{ path: string }>
    }>
    const files = packed!.files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining(['LICENSE', 'gangway.d.ts', 'node/index.d.ts', 'gangway.min.js']),
    )
    await run('tar', ['-xzf', join(dir, packed!.filename), '-C', modules, '--strip-components=1'])
    expect(await brokenLinks(modules, files)).toEqual([])
    const program = `
      const web = await import('gangway-web')
      const node = await import('gangway-web/node')
      console.log(typeof web.connect, node.TunnelError === web.TunnelError)
    `
    const { code, stdout: out, stderr } = await runModule(d, program, [], dir)
    expect(stderr).toBe('')
    expect(out.trim()).toBe('function true')
    expect(code).toBe(0)
  }, 120_000)
})
