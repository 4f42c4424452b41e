/**
 * relay/read-buffers decides where each read of a socket lands. The property: a read never lands on
 * bytes still lent to someone (a write not yet done), whatever the sequence of read sizes, lends and
 * give-backs; and a read is never larger than the high-water mark it is told about allows.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { BULK_READ, OWN_READ, ReadBuffers } from '../../src/relay/read-buffers.js'
import { scale } from '../robust/scale.js'

interface Lent {
  buffer: ArrayBufferLike
  from: number
  to: number
  giveBack: () => void
}

const step = fc.record({
  /** How much of the offered room the read fills (0..1), biased to full and tiny reads. */
  fill: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true }), fc.constant(0.001)),
  lend: fc.boolean(),
  /** Lent reads given back before this read, oldest first or at random. */
  giveBack: fc.nat({ max: 4 }),
  randomOrder: fc.boolean(),
})

describe('read buffers', () => {
  it('a read never lands on lent bytes, and is never larger than the mark allows', () => {
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1, maxLength: 300 }),
        fc.constantFrom(64 * 1024, 1024 * 1024),
        fc.nat(),
        (steps, queueBytes, seed) => {
          const reads = new ReadBuffers(queueBytes)
          const lent: Lent[] = []
          let rng = seed
          // As Node does: the buffer of the next read is asked for right after a read; writes finish
          // (give-backs) while the socket waits for that read.
          let into = reads.next()
          for (const s of steps) {
            for (let i = 0; i < s.giveBack && lent.length > 0; i++) {
              rng = (rng * 1103515245 + 12345) >>> 0
              const at = s.randomOrder ? rng % lent.length : 0
              lent.splice(at, 1)[0]!.giveBack()
            }
            const bytes = Math.max(1, Math.floor(into.length * s.fill))
            expect(bytes).toBeLessThanOrEqual(into.length)
            if (!reads.isShared(into))
              expect(into.length).toBeLessThanOrEqual(Math.max(64 * 1024, queueBytes))
            const from = into.byteOffset
            const to = from + bytes
            for (const l of lent) {
              if (l.buffer === into.buffer) expect(to <= l.from || from >= l.to).toBe(true)
            }
            const giveBack = reads.done(bytes, into, s.lend && !reads.isShared(into))
            if (giveBack !== undefined) lent.push({ buffer: into.buffer, from, to, giveBack })
            into = reads.next()
          }
        },
      ),
      { numRuns: scale(200, 2000) },
    )
  })

  it('small reads use the shared buffer; a bulk read moves to a slab; a run of small ones moves back', () => {
    const reads = new ReadBuffers(1024 * 1024)
    const first = reads.next()
    expect(reads.isShared(first)).toBe(true)
    reads.done(100, first, false)
    expect(reads.isShared(reads.next())).toBe(true)
    reads.done(BULK_READ, reads.next(), false)
    const slab = reads.next()
    expect(reads.isShared(slab)).toBe(false)
    expect(slab.length).toBe(OWN_READ)
    // A steady transfer whose reads are all written at once reuses the same slab, read after read.
    for (let i = 0; i < 10; i++) {
      const into = reads.next()
      expect(into).toBe(slab)
      reads.done(OWN_READ, into, false)
    }
    // One small read in a transfer does not give the slab up; a run of them does.
    reads.done(10, reads.next(), false)
    expect(reads.next()).toBe(slab)
    for (let i = 0; i < 8; i++) reads.done(10, reads.next(), false)
    expect(reads.isShared(reads.next())).toBe(true)
  })

  it('a lent read: the next read goes after it; given back, the slab is read from its start again', () => {
    const reads = new ReadBuffers(1024 * 1024)
    reads.done(BULK_READ, reads.next(), false)
    const slab = reads.next()
    const giveBack = reads.done(1000, slab, true)
    expect(giveBack).toBeTypeOf('function')
    const after = reads.next()
    expect(after.buffer).toBe(slab.buffer)
    expect(after.byteOffset).toBe(slab.byteOffset + 1000) // 8-byte aligned already
    reads.done(OWN_READ - 1000, after, false)
    giveBack!()
    expect(reads.next()).toBe(slab)
  })

  it('a small high-water mark keeps reads that small', () => {
    const reads = new ReadBuffers(64 * 1024)
    reads.done(BULK_READ, reads.next(), false)
    expect(reads.next().length).toBe(64 * 1024)
  })
})
