import { describe, expect, it } from 'vitest'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

/** The browser core's budget, minified and gzipped (STYLE.md 3.8): it moves only with a justification. */
const BUDGET_BYTES = 3 * 1024

describe('browser core size', () => {
  it(`stays within ${BUDGET_BYTES} bytes min+gzip`, async () => {
    const result = await build({
      entryPoints: ['web/gangway.ts'],
      bundle: true,
      minify: true,
      format: 'esm',
      write: false,
      logLevel: 'silent',
    })
    const size = gzipSync(result.outputFiles[0]!.contents, { level: 9 }).length
    console.log(`web/gangway.ts: ${size} bytes min+gzip`)
    expect(size).toBeLessThanOrEqual(BUDGET_BYTES)
  })
})
