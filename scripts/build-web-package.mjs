// Builds dist/gangway-web/: the browser core and the Node adapter as their own zero-dependency package
// (`gangway-web`), for users who want the shim without the daemon's dependencies. Runs after
// `tsc -p web/tsconfig.build.json` (the .d.ts files) and the minified bundle (npm run build).
import { build } from 'esbuild'
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { webManifest } from './web-package-manifest.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist/gangway-web')
const main = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'))

/** The pages of docs/ this package ships, under their names here. */
const PAGES = { 'shim.md': 'README.md', 'protocol.md': 'protocol.md' }

/**
 * A page's relative links, for this package: a link to a shipped page takes its name here; a link to any
 * other page of docs/ (the daemon's, not shipped) becomes its label and where that page is, as plain text,
 * since the project has no public URL to point at. Fenced code is left as it is.
 */
function relink(markdown) {
  return markdown
    .split(/(^```[\s\S]*?^```$)/m)
    .map((part, i) =>
      i % 2
        ? part
        : part.replace(
            /\[([^\]]+)\]\(([^)#\s]+)(#[^)\s]*)?\)/g,
            (link, label, file, anchor = '') => {
              if (/^[a-z][a-z0-9+.-]*:/i.test(file)) return link
              if (Object.hasOwn(PAGES, file)) return `[${label}](${PAGES[file]}${anchor})`
              return `${label} (\`${posix.join('docs', file)}${anchor}\` in the \`${main.name}\` package)`
            },
          ),
    )
    .join('')
}

await rm(out, { recursive: true, force: true })
await mkdir(join(out, 'node'), { recursive: true })
// The core: one ESM file (the shared wire constants of src/protocol.ts inlined).
await build({
  entryPoints: [join(root, 'web/gangway.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  outfile: join(out, 'gangway.js'),
  logLevel: 'warning',
})
// The Node adapter imports the core from ../gangway.js, so both entries share one TunnelError class.
await build({
  entryPoints: [join(root, 'web/node/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['../gangway.js', 'node:stream'],
  outfile: join(out, 'node/index.js'),
  logLevel: 'warning',
})
for (const name of ['gangway', 'connect', 'tunnel-error', 'tunnel-websocket'])
  await copyFile(join(root, `dist/lib/web/${name}.d.ts`), join(out, `${name}.d.ts`))
await copyFile(join(root, 'dist/lib/web/node/index.d.ts'), join(out, 'node/index.d.ts'))
await copyFile(join(root, 'dist/gangway.min.js'), join(out, 'gangway.min.js'))
await copyFile(join(root, 'LICENSE'), join(out, 'LICENSE'))
// The two pages, with their links kept inside this package (test/packaging/pack.test.ts checks them all).
for (const [page, name] of Object.entries(PAGES))
  await writeFile(join(out, name), relink(await readFile(join(root, 'docs', page), 'utf8')))

await writeFile(join(out, 'package.json'), JSON.stringify(webManifest(main), null, 2) + '\n')
