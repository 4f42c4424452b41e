/**
 * @module auth/limits
 * Two counters the access gate keeps: failed attempts per client address in a sliding window (too many →
 * 4429 before any token is even looked at), and open tunnels per token (or route). Both are bounded in
 * memory: the failure table forgets the oldest addresses beyond `MAX_TRACKED_ADDRESSES`.
 * In memory and synchronous: knows nothing of tokens' meaning, requests or Redis (state/slots.ts is the shared counter).
 */

/** Addresses tracked at once; beyond this the oldest entries are dropped (an attacker with many
 * addresses is the job of a firewall, not of this table). */
const MAX_TRACKED_ADDRESSES = 100_000

export interface FailureLimiter {
  /** True when `address` has reached the limit within the window. */
  isBlocked(address: string): boolean
  /** Records one failed attempt. */
  fail(address: string): void
  /** Addresses currently tracked (for tests and stats). */
  size(): number
}

/**
 * @param max failed attempts per address within `windowMs`; 0 turns the limiter off
 * @param now injectable clock (milliseconds)
 */
export function createFailureLimiter(
  max: number,
  windowMs: number,
  now: () => number = Date.now,
): FailureLimiter {
  const failures = new Map<string, number[]>()
  function recent(address: string): number[] {
    const cutoff = now() - windowMs
    const times = (failures.get(address) ?? []).filter((t) => t > cutoff)
    if (times.length === 0) failures.delete(address)
    else failures.set(address, times)
    return times
  }
  return {
    isBlocked(address) {
      return max > 0 && recent(address).length >= max
    },
    fail(address) {
      if (max === 0) return
      const times = recent(address)
      times.push(now())
      failures.delete(address) // re-insert: Map order is then oldest-first
      failures.set(address, times.slice(-max))
      if (failures.size > MAX_TRACKED_ADDRESSES) {
        // Drop the oldest tenth in one pass: evicting one entry per failure made each failure skip over
        // every slot deleted before (a Map keeps them until it rehashes), about 100 µs each.
        let drop = failures.size - MAX_TRACKED_ADDRESSES * 0.9
        for (const key of failures.keys()) {
          if (drop-- <= 0) break
          failures.delete(key)
        }
      }
    },
    size: () => failures.size,
  }
}

/**
 * Open tunnels per token or route. This process counts them in memory; with `--state-redis` every node
 * counts in Redis instead (state/slots.ts), which is why `acquire` may answer asynchronously and may throw
 * (the shared store is unreachable: the gate refuses with 4503).
 */
export interface ConnectionCounter {
  /** Takes one slot under `key` if fewer than `max` are taken; returns its release, or undefined. */
  acquire(key: string, max: number): (() => void) | undefined | Promise<(() => void) | undefined>
}

/** The in-memory counter: answers at once. */
export interface MemoryConnectionCounter extends ConnectionCounter {
  acquire(key: string, max: number): (() => void) | undefined
  count(key: string): number
}

export function createConnectionCounter(): MemoryConnectionCounter {
  const open = new Map<string, number>()
  return {
    acquire(key, max) {
      const current = open.get(key) ?? 0
      if (max > 0 && current >= max) return undefined
      open.set(key, current + 1)
      let released = false
      return function release(): void {
        if (released) return
        released = true
        const left = (open.get(key) ?? 1) - 1
        if (left <= 0) open.delete(key)
        else open.set(key, left)
      }
    },
    count: (key) => open.get(key) ?? 0,
  }
}
