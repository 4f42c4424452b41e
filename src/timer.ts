/**
 * @module timer
 * Timers that are no-ops when disabled (a 0 delay), so call sites never check whether a feature is on.
 * Imports nothing: every layer may use it.
 */

export interface Timer {
  /** (Re)arm the timer for its full delay. */
  start(): void
  /** Arm it for a given delay instead (used to re-arm for the remaining time). */
  startIn(ms: number): void
  cancel(): void
}

const NOOP_TIMER: Timer = {
  start() {},
  startIn() {},
  cancel() {},
}

/**
 * A one-shot timer calling `fn` `ms` after `start()`; a no-op object when `ms` is 0. Deliberately not
 * unref'd: every tunnel clears its timers when it ends, and a leaked one should be visible.
 */
export function timer(fn: () => void, ms: number): Timer {
  if (!(ms > 0)) return NOOP_TIMER
  let handle: NodeJS.Timeout | undefined
  function cancel(): void {
    if (handle !== undefined) clearTimeout(handle)
    handle = undefined
  }
  function startIn(delay: number): void {
    cancel()
    handle = setTimeout(fire, delay)
  }
  function fire(): void {
    handle = undefined
    fn()
  }
  return { start: () => startIn(ms), startIn, cancel }
}
