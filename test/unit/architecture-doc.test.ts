import { describe, expect, it } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'
// @ts-expect-error: a plain-JS script without types; only its exports are used here
import { LAYERS } from '../../scripts/check-layers.mjs'

const doc = readFileSync('docs/architecture.md', 'utf8')

describe('docs/architecture.md matches the code', () => {
  it('names every layer of scripts/check-layers.mjs', () => {
    for (const layer of (LAYERS as string[]).filter((l) => l !== 'ground' && l !== 'entry')) {
      expect(doc).toContain(`${layer}/`)
    }
  })

  it('every module it names exists, and every function it names is in that module', () => {
    // `folder/file.ts` `fn()` pairs, and bare module mentions
    const modules = [...doc.matchAll(/`(?:src\/)?((?:[a-z]+\/)?[a-z-]+\.ts)`/g)].map((m) => m[1]!)
    expect(modules.length).toBeGreaterThan(20)
    for (const module of modules) expect(existsSync(`src/${module}`), module).toBe(true)
    const pairs = [...doc.matchAll(/`([a-z]+\/[a-z-]+\.ts)` `([A-Za-z]+)\(\)`/g)]
    expect(pairs.length).toBeGreaterThan(8)
    for (const [, module, fn] of pairs) {
      expect(readFileSync(`src/${module}`, 'utf8'), `${module} ${fn}()`).toMatch(
        new RegExp(`function ${fn}\\b`),
      )
    }
  })

  it('every module says what it owns in a @module header naming its own path', () => {
    const modules = [...doc.matchAll(/`(?:src\/)?([a-z]+\/[a-z-]+\.ts)`/g)]
      .map((m) => m[1]!)
      .filter((m) => !m.startsWith('src/'))
    for (const module of new Set(modules)) {
      const text = readFileSync(`src/${module}`, 'utf8')
      expect(text, module).toContain(`@module ${module.replace(/\.ts$/, '')}`)
    }
  })
})
