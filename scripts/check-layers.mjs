#!/usr/bin/env node
// check-layers: keeps src/ a house (docs/architecture.md). Run by `npm run lint`.
//
// Every module of src/ belongs to one layer: a folder, or the ground floor (the files directly in src/).
// A module may import modules of its own layer and of the layers below it, never above; and no chain of
// imports (type-only imports included) may lead back to where it started. web/ is checked by ESLint.
//
// Usage: node scripts/check-layers.mjs [ROOT]   exit 0 and one summary line, or 1 and one line a problem.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

/** Lowest first. A module may import only its own layer and those listed before it. */
export const LAYERS = [
  'ground',
  'config',
  'relay',
  'targets',
  'auth',
  'state',
  'client',
  'gateway',
  'ops',
  'commands',
  'entry',
]

/** The layer of a path relative to src/ (`gateway/server.ts` → `gateway`), or undefined if unknown. */
export function layerOf(path) {
  if (path === 'index.ts') return 'entry'
  const slash = path.indexOf('/')
  if (slash === -1) return 'ground'
  const folder = path.slice(0, slash)
  return LAYERS.includes(folder) && folder !== 'ground' && folder !== 'entry' ? folder : undefined
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'([^']+)'|import\(\s*'([^']+)'\s*\)/g

/** The relative imports of one module, as paths relative to src/. */
export function importsOf(srcRoot, file, text) {
  const found = []
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2]
    if (!spec.startsWith('.')) continue
    const abs = resolve(dirname(join(srcRoot, file)), spec).replace(/\.js$/, '.ts')
    found.push(relative(srcRoot, abs))
  }
  return found
}

/** Problems in a module graph: `{ file: [imported, …] }` keyed by paths relative to src/. */
export function checkGraph(graph) {
  const problems = []
  for (const [file, imports] of Object.entries(graph)) {
    const own = layerOf(file)
    if (own === undefined) {
      problems.push(
        `${file}: not in a layer (add its folder to LAYERS in scripts/check-layers.mjs)`,
      )
      continue
    }
    for (const imported of imports) {
      if (imported.startsWith('..')) {
        problems.push(`${file}: imports ${imported}, outside src/`)
        continue
      }
      const theirs = layerOf(imported)
      if (theirs !== undefined && LAYERS.indexOf(theirs) > LAYERS.indexOf(own)) {
        problems.push(
          `${file}: imports ${imported} (${own} may not import ${theirs}, a layer above it)`,
        )
      }
    }
  }
  for (const cycle of findCycles(graph)) problems.push(`import circle: ${cycle.join(' → ')}`)
  return problems
}

/** Every strongly connected group of modules, as one circle through it (Tarjan's algorithm). */
function findCycles(graph) {
  let index = 0
  const indexOf = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const cycles = []
  function visit(node) {
    indexOf.set(node, index)
    low.set(node, index)
    index++
    stack.push(node)
    onStack.add(node)
    for (const next of graph[node] ?? []) {
      if (!(next in graph)) continue
      if (!indexOf.has(next)) {
        visit(next)
        low.set(node, Math.min(low.get(node), low.get(next)))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node), indexOf.get(next)))
      }
    }
    if (low.get(node) === indexOf.get(node)) {
      const group = []
      let member
      do {
        member = stack.pop()
        onStack.delete(member)
        group.push(member)
      } while (member !== node)
      const selfLoop = (graph[node] ?? []).includes(node)
      if (group.length > 1 || selfLoop) cycles.push(circleThrough(graph, new Set(group), node))
    }
  }
  for (const node of Object.keys(graph).sort()) if (!indexOf.has(node)) visit(node)
  return cycles
}

/** One concrete circle from `start` back to it, within `group` (breadth-first, so the shortest). */
function circleThrough(graph, group, start) {
  const previous = new Map([[start, undefined]])
  const queue = [start]
  while (queue.length > 0) {
    const node = queue.shift()
    for (const next of graph[node] ?? []) {
      if (!group.has(next)) continue
      if (next === start) {
        const path = [start]
        for (let at = node; at !== start; at = previous.get(at)) path.splice(1, 0, at)
        return [...path, start]
      }
      if (!previous.has(next)) {
        previous.set(next, node)
        queue.push(next)
      }
    }
  }
  return [start, start]
}

/** Reads every .ts module under `srcRoot` into a graph. */
export function readGraph(srcRoot) {
  const graph = {}
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) {
        const file = relative(srcRoot, path)
        graph[file] = importsOf(srcRoot, file, readFileSync(path, 'utf8'))
      }
    }
  }
  walk(srcRoot)
  return graph
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const srcRoot = resolve(process.argv[2] ?? '.', 'src')
  const graph = readGraph(srcRoot)
  const problems = checkGraph(graph)
  for (const problem of problems) console.error(`check-layers: ${problem}`)
  if (problems.length > 0) process.exit(1)
  const edges = Object.values(graph).reduce((n, imports) => n + imports.length, 0)
  console.log(
    `check-layers: ${Object.keys(graph).length} modules, ${edges} imports, no upward import, no circle`,
  )
}
