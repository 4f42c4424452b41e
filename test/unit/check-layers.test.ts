import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
// @ts-expect-error: a plain-JS script without types; only its exports are used here
import { checkGraph, layerOf, readGraph } from '../../scripts/check-layers.mjs'

type Check = (graph: Record<string, string[]>) => string[]
const check = checkGraph as Check

describe('check-layers (npm run lint)', () => {
  it('places modules: ground floor, folders, the entry', () => {
    expect((layerOf as (p: string) => string)('errors.ts')).toBe('ground')
    expect((layerOf as (p: string) => string)('relay/bridge.ts')).toBe('relay')
    expect((layerOf as (p: string) => string)('index.ts')).toBe('entry')
    expect((layerOf as (p: string) => string | undefined)('misc/x.ts')).toBeUndefined()
  })

  it('accepts downward imports and rejects one that runs up a layer', () => {
    expect(check({ 'relay/bridge.ts': ['protocol.ts', 'config/options.ts'] })).toEqual([])
    expect(check({ 'relay/bridge.ts': ['gateway/server.ts'] })).toEqual([
      'relay/bridge.ts: imports gateway/server.ts (relay may not import gateway, a layer above it)',
    ])
    expect(check({ 'log.ts': ['config/options.ts'] })[0]).toMatch(/ground may not import config/)
  })

  it('rejects a circle, even inside one layer and through type-only imports', () => {
    const problems = check({
      'relay/a.ts': ['relay/b.ts'],
      'relay/b.ts': ['relay/c.ts'],
      'relay/c.ts': ['relay/a.ts'],
    })
    expect(problems).toEqual(['import circle: relay/a.ts → relay/b.ts → relay/c.ts → relay/a.ts'])
  })

  it('rejects a module outside every layer', () => {
    expect(check({ 'misc/x.ts': [] })[0]).toMatch(/not in a layer/)
  })

  it('reads `import type` and dynamic imports as edges', () => {
    const graph = (readGraph as (root: string) => Record<string, string[]>)('src')
    expect(graph['gateway/server.ts']).toContain('relay/bridge.ts')
    expect(graph['commands/demo.ts']).toContain('commands/demo-service.ts')
  })

  it('passes on the tree as it is', () => {
    const out = execFileSync(process.execPath, ['scripts/check-layers.mjs'], { encoding: 'utf8' })
    expect(out).toMatch(/no upward import, no circle/)
  })
})
