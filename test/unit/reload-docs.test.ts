import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { OPTIONS } from '../../src/config/options.js'
import { RESTART_ONLY } from '../../src/ops/reload.js'
import { REPO_ROOT } from '../cli/gangway-process.js'

/** The config keys named in backticks in one column of the reload table of docs/operations.md. */
async function tableColumns(): Promise<{ live: string[]; restart: string[] }> {
  const doc = await readFile(`${REPO_ROOT}docs/operations.md`, 'utf8')
  const section = doc.slice(
    doc.indexOf('## Reloading the configuration'),
    doc.indexOf('## Signals'),
  )
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.split('|').map((cell) => cell.trim()))
  const keys = (cell: string | undefined): string[] =>
    [...(cell ?? '').matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!)
  return { live: rows.flatMap((r) => keys(r[1])), restart: rows.flatMap((r) => keys(r[2])) }
}

describe('docs/operations.md reload table', () => {
  it('names every option once, and its restart column is exactly RESTART_ONLY', async () => {
    const { live, restart } = await tableColumns()
    const keyOf = (field: string): string => OPTIONS.find((o) => o.field === field)?.key ?? field
    expect([...restart].sort()).toEqual(RESTART_ONLY.map(keyOf).sort())
    const all = [...live, ...restart]
    expect(new Set(all).size).toBe(all.length)
    // Every option must be classified (a new option: add it to the table, and to RESTART_ONLY if needed).
    const expected = [...OPTIONS.map((o) => o.key), 'listen', 'target', 'routes'].sort()
    expect([...all].sort()).toEqual(expected)
  })
})
