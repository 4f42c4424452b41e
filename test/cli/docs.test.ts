import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { describeDefault, OPTIONS } from '../../src/config/options.js'
import { REPO_ROOT } from './gangway-process.js'

describe('docs/cli.md', () => {
  it('has one table row per option, with its config key, default and description', async () => {
    const doc = await readFile(`${REPO_ROOT}docs/cli.md`, 'utf8')
    // Prettier pads the cells; `\|` inside a cell is an escaped pipe, not a column break.
    const rows = doc
      .split('\n')
      .filter((line) => line.startsWith('| `--'))
      .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim()))
      .filter((cells) => cells.length === 7) // the options table has five columns
    expect(rows).toHaveLength(OPTIONS.length)
    for (const spec of OPTIONS) {
      const cells = rows.find((row) => row[1] === `\`--${spec.flag}\``)
      const shownDefault = spec.default === undefined ? 'none' : `\`${describeDefault(spec)}\``
      expect(cells?.[2], spec.flag).toBe(`\`${spec.key}\``)
      expect(cells?.[4], spec.flag).toBe(shownDefault)
      expect(cells?.[5], spec.flag).toBe(spec.describe)
    }
  })
})
