/**
 * @module cancel
 * What a dial and a target login watch to stop early: the client went away while they ran. It is the part
 * of `AbortSignal` they use (`aborted`, `reason`, an 'abort' listener), so an `AbortSignal` serves too.
 * The daemon makes one per connection instead of an `AbortController`, whose EventTarget machinery cost
 * 20-40 µs of CPU per connection, 5-10 % of it, in `npm run bench`'s connection rate (docs/benchmark.md).
 * Imports nothing: every layer may use it.
 */

/** A listener for the one event there is. */
export type CancelListener = () => void

/** The watching side: what `dial()` and a login read. An `AbortSignal` is one. */
export interface CancelSignal {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener(type: 'abort', listener: CancelListener): void
  removeEventListener(type: 'abort', listener: CancelListener): void
}

/**
 * One cancellation: `cancel(reason)` marks it aborted and calls each listener once, in the order they were
 * added; one added twice is called once. A listener added after that is never called (like `AbortSignal`:
 * check `aborted` first). Unlike `AbortSignal`, removing a listener from inside another one during
 * `cancel` does not stop it from being called; nothing here does that.
 */
export class Cancel implements CancelSignal {
  #aborted = false
  #reason: unknown = undefined
  /** Usually one listener at a time (the dial, then the login): no array until a second one comes. */
  #listeners: CancelListener | CancelListener[] | undefined = undefined

  get aborted(): boolean {
    return this.#aborted
  }

  get reason(): unknown {
    return this.#reason
  }

  addEventListener(_type: 'abort', listener: CancelListener): void {
    const current = this.#listeners
    if (this.#aborted || current === listener) return // added twice: called once, as by AbortSignal
    if (current === undefined) this.#listeners = listener
    else if (typeof current === 'function') this.#listeners = [current, listener]
    else if (!current.includes(listener)) current.push(listener)
  }

  removeEventListener(_type: 'abort', listener: CancelListener): void {
    const current = this.#listeners
    if (current === listener) this.#listeners = undefined
    else if (Array.isArray(current)) {
      const at = current.indexOf(listener)
      if (at !== -1) current.splice(at, 1)
    }
  }

  /** Aborts with `reason` (once: later calls change nothing). */
  cancel(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    const current = this.#listeners
    this.#listeners = undefined
    if (typeof current === 'function') current()
    else if (current !== undefined) for (const listener of current) listener()
  }
}
