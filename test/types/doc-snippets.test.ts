/**
 * Doc examples are tests (issue 14): every JavaScript / TypeScript code block of docs/shim.md and the
 * README is compiled as written, with TypeScript 5.9 strict and the DOM and Node types, against the
 * sources (`/gangway.js` and `gangway/web` → web/gangway.ts, `gangway/node` → web/node/index.ts,
 * `gangway` → src/index.ts). No snippet may contain a cast. The names a snippet takes from its
 * surroundings (`url`, `token`, …) and the packages not installed here are declared in doc-stubs.d.ts.
 * Also: `moduleResolution: node10` finds `gangway/web` and `gangway/node` through `typesVersions`, and the
 * built `.d.ts` of `TunnelNetSocket` is assignable to `net.Socket`.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'

const d = createDisposer()
afterEach(() => d.run())

const root = fileURLToPath(new URL('../..', import.meta.url))

async function codeBlocks(file: string): Promise<Array<{ where: string; code: string }>> {
  const text = await readFile(join(root, file), 'utf8')
  const blocks: Array<{ where: string; code: string }> = []
  const fence = /^```(js|ts|javascript|typescript)\n([\s\S]*?)^```$/gm
  for (let m; (m = fence.exec(text));) {
    const line = text.slice(0, m.index).split('\n').length
    blocks.push({ where: `${file}:${line}`, code: m[2]! })
  }
  return blocks
}

function compile(files: string[], options: ts.CompilerOptions): string[] {
  const program = ts.createProgram(files, options)
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const where = diag.file
      ? `${diag.file.fileName.slice(root.length)}:${diag.file.getLineAndCharacterOfPosition(diag.start ?? 0).line + 1}`
      : ''
    return `${where} TS${diag.code}: ${ts.flattenDiagnosticMessageText(diag.messageText, '\n')}`
  })
}

const STRICT: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  types: ['node'],
  esModuleInterop: true,
  skipLibCheck: true,
}

describe('documentation snippets', () => {
  it('every code block of docs/shim.md and README.md compiles as written, without casts', async () => {
    const dir = join(root, `.tmp-doc-snippets-${process.pid}`)
    await mkdir(dir, { recursive: true })
    d.add(() => rm(dir, { recursive: true, force: true }))
    const blocks = [...(await codeBlocks('docs/shim.md')), ...(await codeBlocks('README.md'))]
    expect(blocks.length).toBeGreaterThanOrEqual(9)
    const files: string[] = []
    const where = new Map<string, string>()
    for (const [i, block] of blocks.entries()) {
      expect(block.code, block.where).not.toMatch(/\bas (unknown|never|any)\b|<any>/)
      // `/gangway.js` is the daemon's copy of gangway/web (a rooted path TypeScript will not map).
      const code = block.code.replaceAll("'/gangway.js'", "'gangway/web'")
      const file = join(dir, `snippet-${i}.ts`)
      // A module of its own (top-level await), even when the block imports nothing.
      await writeFile(file, `${code}\nexport {}\n`)
      files.push(file)
      where.set(file.slice(root.length), block.where)
    }
    const errors = compile(
      [...files, join(root, 'test/types/doc-stubs.d.ts'), join(root, 'test/types/xmpp.d.ts')],
      {
        ...STRICT,
        moduleResolution: ts.ModuleResolutionKind.Bundler,
        baseUrl: root,
        paths: {
          'gangway/web': ['web/gangway.ts'],
          'gangway/node': ['web/node/index.ts'],
          gangway: ['src/index.ts'],
        },
      },
    ).map((e) => e.replace(/^(\S+?):(\d+)/, (_, f: string, l) => `${where.get(f) ?? f} (+${l})`))
    expect(errors).toEqual([])
  }, 120_000)

  it('moduleResolution node10 finds gangway/web and gangway/node (typesVersions), and gangway still', async () => {
    const dir = join(root, `.tmp-node10-${process.pid}`)
    await mkdir(join(dir, 'node_modules'), { recursive: true })
    d.add(() => rm(dir, { recursive: true, force: true }))
    await symlink(root, join(dir, 'node_modules', 'gangway'))
    const file = join(dir, 'app.ts')
    await writeFile(
      file,
      [
        "import { connect, TunnelWebSocket, type TunnelSocket } from 'gangway/web'",
        "import type { Socket } from 'net'",
        "import { createNetSocket } from 'gangway/node'",
        "import { createTunnelServer } from 'gangway'",
        "const socket: TunnelSocket = connect('', { url: '/' })",
        "const ws: WebSocket = new TunnelWebSocket('', { url: '/' })",
        "const tcp: Socket = createNetSocket({ url: 'ws://127.0.0.1/' }).connect(5432, 'db')",
        'void socket, ws, tcp, createTunnelServer',
      ].join('\n'),
    )
    const errors = compile([file], {
      ...STRICT,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.Node10,
    })
    expect(errors).toEqual([])
  }, 120_000)
})
