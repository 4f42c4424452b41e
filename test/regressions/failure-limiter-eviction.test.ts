/**
 * Found by the brute-force row at full scale (it timed out): beyond 100,000 tracked addresses the failure
 * limiter evicted one entry per failure with `keys().next()`, which skips every slot deleted before (a Map
 * keeps them until it rehashes), so each failed attempt from a new address cost ~100 µs of CPU instead of
 * ~1 µs: a million addresses (an IPv6 /64 has far more) took minutes. Now the oldest tenth is dropped in one
 * pass. The guard is this test's own timeout, far above the fixed run (a few seconds, 2 cores).
 */
import { describe, expect, it } from 'vitest'
import { createFailureLimiter } from '../../src/auth/limits.js'

describe('regression: failure limiter eviction stays cheap beyond its cap', () => {
  it('one million addresses, one failure each', () => {
    let now = 0
    const limiter = createFailureLimiter(5, 60_000, () => now)
    for (let i = 0; i < 1_000_000; i++) {
      limiter.fail(`2001:db8::${i.toString(16)}`)
      if (i % 100_000 === 0) now++
    }
    expect(limiter.size()).toBeGreaterThanOrEqual(90_000)
    expect(limiter.size()).toBeLessThanOrEqual(100_000)
    // The newest addresses are still tracked (and blocked once they reach the limit).
    for (let i = 0; i < 5; i++) limiter.fail('2001:db8::f423f')
    expect(limiter.isBlocked('2001:db8::f423f')).toBe(true)
  }, 60_000)
})
