/**
 * gangway-web's package.json (issue 14): derived from the main one, and carrying the project's links
 * (`repository`, `homepage`, `bugs`) when the main package.json has them. The main one has none today (the
 * project has no public URL), so the copying is shown on a made-up main manifest with reserved URLs, and the
 * built dist/gangway-web/package.json is checked to be exactly what the same function makes of ours.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain-JS script without types; only its exports are used here
import { LINK_FIELDS as fields, webManifest as make } from '../../scripts/web-package-manifest.mjs'

type Manifest = Record<string, unknown>
const webManifest = make as (main: Manifest) => Manifest
const LINK_FIELDS = fields as string[]

const root = fileURLToPath(new URL('../..', import.meta.url))

const MAIN = { name: 'gangway', version: '1.2.3', license: 'MIT', engines: { node: '>=20.19' } }
const LINKS = {
  repository: { type: 'git', url: 'git+https://git.example.invalid/gangway.git' },
  homepage: 'https://gangway.example.invalid/',
  bugs: { url: 'https://git.example.invalid/gangway/issues' },
}

describe('gangway-web package.json', () => {
  it('copies repository, homepage and bugs from the main package.json, as they are, when present', () => {
    const web = webManifest({ ...MAIN, ...LINKS })
    expect(LINK_FIELDS).toEqual(['repository', 'homepage', 'bugs'])
    expect([web.repository, web.homepage, web.bugs]).toEqual([
      LINKS.repository,
      LINKS.homepage,
      LINKS.bugs,
    ])
    expect([web.name, web.version, web.license]).toEqual(['gangway-web', '1.2.3', 'MIT'])
    const bare = JSON.parse(JSON.stringify(webManifest(MAIN))) as Manifest
    for (const field of LINK_FIELDS) expect(bare, field).not.toHaveProperty(field)
  })

  it('the built dist/gangway-web/package.json is that manifest of this package.json', async () => {
    const main = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest
    const built = JSON.parse(
      await readFile(join(root, 'dist/gangway-web/package.json'), 'utf8'),
    ) as Manifest
    expect(built).toEqual(JSON.parse(JSON.stringify(webManifest(main))))
    for (const field of LINK_FIELDS) expect(built[field], field).toEqual(main[field])
  })
})
