/**
 * The status page's chart history (web/admin/status-charts.js, plain browser JavaScript without DOM use in
 * `createHistory`): what the charts say was relayed and refused equals what the polled counters grew by.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: plain JavaScript served as it is to the browser, without type declarations
import { createHistory } from '../../web/admin/status-charts.js'

interface Sample {
  t: number
  up: number
  down: number
  open: number
  refusals: Record<string, number>
}
interface History {
  samples: Sample[]
  add(sample: Sample): void
  bytes(): { up: number; down: number }
  refusals(): Record<string, number>
  throughput(): Array<{ t: number; up: number; down: number }>
}
const makeHistory = createHistory as (windowMs?: number) => History

describe('status page chart history', () => {
  it('counts exactly the growth of the counters, never a negative step', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ up: fc.nat(1e6), down: fc.nat(1e6), bad: fc.nat(5) }), {
          minLength: 1,
          maxLength: 50,
        }),
        (steps) => {
          const history = makeHistory(1e9)
          let up = 0
          let down = 0
          let bad = 0
          history.add({ t: 0, up, down, open: 0, refusals: {} })
          steps.forEach((step, i) => {
            up += step.up
            down += step.down
            bad += step.bad
            history.add({ t: (i + 1) * 1000, up, down, open: 1, refusals: { token_invalid: bad } })
          })
          expect(history.bytes()).toEqual({ up, down })
          expect(history.refusals()['token_invalid'] ?? 0).toBe(bad)
          for (const rate of history.throughput()) {
            expect(rate.up).toBeGreaterThanOrEqual(0)
            expect(rate.down).toBeGreaterThanOrEqual(0)
          }
        },
      ),
    )
  })

  it('treats a counter that starts again (a restarted worker) as no traffic, and forgets old samples', () => {
    const history = makeHistory(10_000)
    history.add({ t: 0, up: 500, down: 500, open: 1, refusals: {} })
    history.add({ t: 1000, up: 100, down: 100, open: 1, refusals: {} })
    history.add({ t: 2000, up: 300, down: 100, open: 1, refusals: {} })
    expect(history.bytes()).toEqual({ up: 200, down: 0 })
    history.add({ t: 2000, up: 9999, down: 9999, open: 1, refusals: {} }) // not newer: ignored
    history.add({ t: 30_000, up: 400, down: 100, open: 0, refusals: {} })
    expect(history.samples.map((s) => s.t)).toEqual([30_000])
  })
})
