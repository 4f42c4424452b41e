/**
 * Collects cleanup callbacks during a test and runs them (last in, first out) in afterEach, so every test
 * closes what it opened even when it fails halfway.
 */
export interface Disposer {
  add(fn: () => unknown): void
  run(): Promise<void>
}

export function createDisposer(): Disposer {
  let stack: Array<() => unknown> = []
  return {
    add(fn) {
      stack.push(fn)
    },
    async run() {
      const fns = stack.reverse()
      stack = []
      for (const fn of fns) await fn()
    },
  }
}
