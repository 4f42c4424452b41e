/**
 * The delivery property of the shim (issue 14), shared by the Node run (test/shim/delivery.property.test.ts)
 * and the Chromium run (test/browser/delivery.test.ts): a scenario of writes of every BufferSource kind,
 * interleaved ends (close(), writer.close(), writer.abort(), a daemon-side close) and credit stalls (the
 * TCP sink stops reading), played by `runScenario` against a real daemon in front of a TCP sink, then
 * checked by `checkDelivery`: the sink holds exactly the resolved writes after a clean end, a prefix of the
 * writes after a failure, resolved writes are a prefix of all writes, and no write is left pending.
 *
 * `runScenario` is self-contained (no imports, no closures): the browser test sends its source text to
 * the page, so it must use only web APIs and its arguments.
 */
import fc from 'fast-check'

export const KINDS = [
  'ArrayBuffer',
  'Uint8Array',
  'Buffer',
  'Int8Array',
  'Uint16Array',
  'Int32Array',
  'Float64Array',
  'BigUint64Array',
  'DataView',
] as const
export type Kind = (typeof KINDS)[number]

export type Op =
  | { op: 'write'; kind: Kind; size: number; offset: number; wait: boolean }
  | { op: 'close' | 'writerClose' | 'abort' | 'daemonClose' | 'stall' | 'resume' }

export interface Scenario {
  seed: number
  highWaterMark: number
  ops: Op[]
}

export interface Played {
  /** One per write op, in order: 'ok' or the rejection's `code` / `name`. */
  writes: string[]
  /** 'ok' or the rejection's code. */
  closed: string
  /** Milliseconds-free marker of a hang: writes or closed that never settled within the bound. */
  hung: string[]
}

/** What the scenario asks of the test side; none of them waits for anything. */
export interface Hooks {
  /** The TCP sink stops reading (now, and any connection it accepts later) until `resume`. */
  stall(): Promise<void>
  resume(): Promise<void>
  /** The daemon closes every open tunnel (4410, as the admin API does). */
  daemonClose(): Promise<void>
}

const MiB = 1024 * 1024

/** Sizes 0 B – 4 MiB: mostly small (coalescing), some around the window, a few large. */
const size = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 3, arbitrary: fc.integer({ min: 301, max: 300_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 300_001, max: 4 * MiB }) },
)

/** Bytes per element of the multi-byte kinds (sizes are rounded down to a whole number of elements). */
export const ELEMENT: Partial<Record<Kind, number>> = {
  Uint16Array: 2,
  Int32Array: 4,
  Float64Array: 8,
  BigUint64Array: 8,
}

const write = fc
  .record({
    op: fc.constant('write' as const),
    kind: fc.constantFrom(...KINDS),
    size,
    offset: fc.integer({ min: 0, max: 3 }),
    wait: fc.boolean(),
  })
  .map((w) => ({ ...w, size: w.size - (w.size % (ELEMENT[w.kind] ?? 1)) }))

const other = fc.record({
  op: fc.constantFrom(
    'close' as const,
    'writerClose' as const,
    'abort' as const,
    'daemonClose' as const,
    'stall' as const,
    'resume' as const,
  ),
})

export function scenarios(maxOps: number, maxTotal = 12 * MiB): fc.Arbitrary<Scenario> {
  return fc
    .record({
      seed: fc.integer({ min: 1, max: 0x7fffffff }),
      highWaterMark: fc.constantFrom(16 * 1024, 256 * 1024, MiB),
      ops: fc.array(fc.oneof({ weight: 4, arbitrary: write }, { weight: 1, arbitrary: other }), {
        minLength: 1,
        maxLength: maxOps,
      }),
    })
    .filter((s) => s.ops.reduce((sum, o) => sum + (o.op === 'write' ? o.size : 0), 0) <= maxTotal)
}

/** The bytes of write number `index` of a scenario (xorshift from the seed), as `runScenario` makes them. */
export function writeBytes(seed: number, index: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size)
  let x = (seed ^ Math.imul(index + 1, 0x9e3779b1)) | 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

/**
 * Plays `sc` through `gangway.connect` (the page's or Node's). Each write's buffer is filled with
 * `writeBytes(seed, i, size)` (its source is passed as `makeBytes`), wrapped in the op's BufferSource kind
 * at `offset` into a larger buffer, and overwritten with 0xEE as soon as the write resolves (a caller that
 * reuses its buffer). Returns how every write and `closed` settled.
 */
export async function runScenario(
  gangway: { connect: (address: string, options: Record<string, unknown>) => unknown },
  options: Record<string, unknown>,
  sc: Scenario,
  hooks: Hooks,
  makeBytes: (seed: number, index: number, size: number) => Uint8Array,
  boundMs: number,
): Promise<Played> {
  type Sock = {
    writable: WritableStream<unknown>
    readable: ReadableStream<Uint8Array>
    opened: Promise<unknown>
    closed: Promise<unknown>
    close(): Promise<void>
  }
  const socket = gangway.connect('', { ...options, highWaterMark: sc.highWaterMark }) as Sock
  const writer = socket.writable.getWriter()
  // Read and drop what the target sends (nothing), so the readable never holds the tunnel.
  void socket.readable.pipeTo(new WritableStream()).catch(() => {})
  const codeOf = (e: unknown): string => {
    const err = e as { code?: string; name?: string }
    return e instanceof TypeError ? 'TypeError' : String(err?.code ?? err?.name ?? e)
  }
  const sizes: Record<string, number> = {
    Uint16Array: 2,
    Int32Array: 4,
    Float64Array: 8,
    BigUint64Array: 8,
  }
  const writes: Array<Promise<string>> = []
  let index = 0
  let stalled = false
  for (const o of sc.ops) {
    if (o.op === 'write') {
      const i = index++
      const bytes = makeBytes(sc.seed, i, o.size)
      const element = sizes[o.kind] ?? 1
      const backing = new ArrayBuffer(o.size + 8 * (o.offset + 1))
      const at = o.offset * element
      new Uint8Array(backing, at, o.size).set(bytes)
      const Ctor = (globalThis as unknown as Record<string, new (...a: unknown[]) => object>)[
        o.kind
      ]
      let chunk: object
      if (o.kind === 'ArrayBuffer') chunk = backing.slice(at, at + o.size)
      else if (o.kind === 'Uint8Array' || o.kind === 'Buffer' || o.kind === 'DataView') {
        // (A 'Buffer' in a browser is a Uint8Array: the page has no Buffer.)
        const B = (
          globalThis as unknown as {
            Buffer?: { from(b: ArrayBuffer, o: number, n: number): object }
          }
        ).Buffer
        chunk =
          o.kind === 'DataView'
            ? new DataView(backing, at, o.size)
            : o.kind === 'Buffer' && B
              ? B.from(backing, at, o.size)
              : new Uint8Array(backing, at, o.size)
      } else chunk = new Ctor!(backing, at, o.size / element)
      const view = new Uint8Array(backing)
      const settled = writer.write(chunk).then(() => {
        view.fill(0xee) // the caller reuses its buffer
        return 'ok'
      }, codeOf)
      writes.push(settled)
      // A stalled target may hold a write forever: only wait on writes while the target reads.
      if (o.wait && !stalled) await settled
    } else if (o.op === 'close') void socket.close()
    else if (o.op === 'writerClose') void writer.close().catch(() => {})
    else if (o.op === 'abort') void writer.abort('test abort').catch(() => {})
    else if (o.op === 'daemonClose') {
      await socket.opened.catch(() => {})
      await hooks.daemonClose()
    } else if (o.op === 'stall') {
      stalled = true
      await hooks.stall()
    } else {
      stalled = false
      await hooks.resume()
    }
  }
  await hooks.resume()
  void socket.close()
  const hung: string[] = []
  const bound = <T>(p: Promise<T>, what: string): Promise<T | string> =>
    Promise.race([
      p,
      new Promise<string>((resolve) =>
        setTimeout(() => {
          hung.push(what)
          resolve('hung')
        }, boundMs),
      ),
    ])
  const closed = await bound(
    socket.closed.then(
      () => 'ok',
      (e: unknown) => codeOf(e),
    ),
    'closed',
  )
  const results: string[] = []
  for (const [i, w] of writes.entries()) results.push(String(await bound(w, `write ${i}`)))
  return { writes: results, closed: String(closed), hung }
}

/** The property, from what the sink received and how the scenario played. */
export function checkDelivery(sc: Scenario, played: Played, received: Uint8Array): void {
  if (played.hung.length) throw new Error(`never settled: ${played.hung.join(', ')}`)
  const writes = sc.ops.filter((o) => o.op === 'write')
  const all: Uint8Array[] = writes.map((o, i) => writeBytes(sc.seed, i, o.size))
  // Resolved writes are a prefix of all writes: none resolves after an earlier one failed.
  const firstFailed = played.writes.findIndex((w) => w !== 'ok')
  if (firstFailed >= 0 && played.writes.slice(firstFailed).some((w) => w === 'ok'))
    throw new Error(
      `a write resolved after write ${firstFailed} failed: ${played.writes.join(' ')}`,
    )
  const resolvedCount = firstFailed < 0 ? writes.length : firstFailed
  const concat = (parts: Uint8Array[]): Buffer => Buffer.concat(parts)
  const got = Buffer.from(received)
  if (played.closed === 'ok') {
    const want = concat(all.slice(0, resolvedCount))
    if (!got.equals(want))
      throw new Error(
        `clean end: the sink got ${got.length} bytes, the resolved writes hold ${want.length} (${played.writes.join(' ')})`,
      )
  } else {
    const everything = concat(all)
    if (got.length > everything.length || !got.equals(everything.subarray(0, got.length)))
      throw new Error(
        `failed end (${played.closed}): the sink's ${got.length} bytes are not a prefix of the writes`,
      )
  }
  // Every write that did not resolve rejected with a reason a caller can act on.
  // TypeError: the stream's own answer to a write after writer.close(); Node 20's streams answer a second
  // such write with ERR_INTERNAL_ASSERTION (a Node bug, still a rejection).
  const reasons = [
    'CLOSED',
    'ABORTED',
    'CLOSED_BY_OPERATOR',
    'NETWORK', // a second daemon-side close of a closing tunnel cuts the connection
    'test abort',
    'TypeError',
    'ERR_INTERNAL_ASSERTION',
  ]
  for (const w of played.writes)
    if (w !== 'ok' && !reasons.includes(w)) throw new Error(`a write rejected with ${w}`)
}
