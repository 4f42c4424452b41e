/**
 * src/cancel.ts stands in for AbortController in every connection's dial and login. Differential: any
 * sequence of adding, removing and aborting gives the same calls, in the same order, and the same
 * `aborted`/`reason` as Node's own AbortController.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Cancel, type CancelSignal } from '../../src/cancel.js'
import { scale } from '../robust/scale.js'

const LISTENERS = 4

const op = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), which: fc.nat({ max: LISTENERS - 1 }) }),
  fc.record({ kind: fc.constant('remove' as const), which: fc.nat({ max: LISTENERS - 1 }) }),
  fc.record({ kind: fc.constant('abort' as const), reason: fc.string({ maxLength: 8 }) }),
)
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never

/** Runs `ops` on one signal; returns which listeners were called, in order, and the final state. */
function run(
  ops: readonly Op[],
  signal: CancelSignal,
  abort: (reason: unknown) => void,
): { calls: number[]; aborted: boolean; reason: unknown } {
  const calls: number[] = []
  const listeners = Array.from({ length: LISTENERS }, (_, i) => () => void calls.push(i))
  for (const o of ops) {
    if (o.kind === 'add') signal.addEventListener('abort', listeners[o.which]!)
    else if (o.kind === 'remove') signal.removeEventListener('abort', listeners[o.which]!)
    else abort(new Error(o.reason))
  }
  const reason = signal.reason instanceof Error ? signal.reason.message : signal.reason
  return { calls, aborted: signal.aborted, reason }
}

describe('Cancel', () => {
  it('behaves as AbortController does on any sequence of add, remove and abort', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 24 }), (ops) => {
        const ours = new Cancel()
        const node = new AbortController()
        const expected = run(ops, node.signal, (r) => node.abort(r))
        expect(run(ops, ours, (r) => ours.cancel(r))).toEqual(expected)
      }),
      { numRuns: scale(500, 20_000) },
    )
  })

  it('calls a listener once however often it is aborted, and never one added afterwards', () => {
    const cancel = new Cancel()
    let calls = 0
    cancel.addEventListener('abort', () => calls++)
    cancel.cancel(new Error('first'))
    cancel.cancel(new Error('second'))
    cancel.addEventListener('abort', () => calls++)
    cancel.cancel(new Error('third'))
    expect(calls).toBe(1)
    expect((cancel.reason as Error).message).toBe('first')
  })
})
