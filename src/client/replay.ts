/**
 * @module client/replay
 * `gangway replay FILE`: reads a session recording (see relay/record.ts and docs/recording.md), prints it as a
 * timeline, or re-sends its client side (the `up` bytes) to a target with the original timing, so a
 * protocol exchange can be reproduced against a test server.
 * Reads recordings only; knows nothing of tokens or of a live daemon.
 */
import { createReadStream } from 'node:fs'
import net from 'node:net'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import type { Target } from '../config/options.js'
import { describeTarget } from '../targets/dial.js'
import { ConfigError, GangwayError } from '../errors.js'
import { RECORDING_FORMAT } from '../relay/record.js'

export type RecordingEntry =
  | { kind: 'header'; conn: number; client: string; target: string; startedAt: string }
  | { kind: 'data'; t: number; direction: 'up' | 'down'; data: Buffer }
  | { kind: 'gap'; t: number; up: number; down: number }
  | { kind: 'end'; t: number; code: number; reason: string; by: string; up: number; down: number }

/** Reads and validates a recording; a malformed line is a `ConfigError` naming the file and line. */
export async function* readRecording(file: string): AsyncGenerator<RecordingEntry> {
  const input = createReadStream(file)
  const opened = once(input, 'open').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read ${file} (${err.code ?? err.message})`)
  })
  await opened
  let line = 0
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++
    if (text.trim() === '') continue
    const fail = (why: string): never => {
      throw new ConfigError(`${file} line ${line}: ${why}`)
    }
    let record: Record<string, unknown>
    try {
      record = JSON.parse(text) as Record<string, unknown>
    } catch {
      return fail('not JSON')
    }
    if (line === 1) {
      if (record['format'] !== RECORDING_FORMAT) fail('not a gangway recording (no format header)')
      yield {
        kind: 'header',
        conn: Number(record['conn']),
        client: String(record['client']),
        target: String(record['target']),
        startedAt: String(record['startedAt']),
      }
      continue
    }
    const t = Number(record['t'])
    if (!Number.isFinite(t)) fail('missing time "t"')
    if (record['d'] === 'up' || record['d'] === 'down') {
      if (typeof record['data'] !== 'string') fail('missing "data"')
      yield {
        kind: 'data',
        t,
        direction: record['d'],
        data: Buffer.from(record['data'] as string, 'base64'),
      }
    } else if (typeof record['gap'] === 'object' && record['gap'] !== null) {
      const gap = record['gap'] as Record<string, unknown>
      yield { kind: 'gap', t, up: Number(gap['up']), down: Number(gap['down']) }
    } else if (typeof record['end'] === 'object' && record['end'] !== null) {
      const end = record['end'] as Record<string, unknown>
      yield {
        kind: 'end',
        t,
        code: Number(end['code']),
        reason: typeof end['reason'] === 'string' ? end['reason'] : '',
        by: String(end['by']),
        up: Number(end['up']),
        down: Number(end['down']),
      }
    } else {
      fail('unknown record')
    }
  }
  if (line === 0) throw new ConfigError(`${file}: empty, not a gangway recording`)
}

/** Writes a human-readable timeline: one line per record, payload shown as text or hex. */
export async function printRecording(
  file: string,
  out: NodeJS.WritableStream,
  options: { hex: boolean },
): Promise<void> {
  for await (const entry of readRecording(file)) {
    switch (entry.kind) {
      case 'header':
        out.write(
          `# tunnel ${entry.conn}: ${entry.client} → ${entry.target}, started ${entry.startedAt}\n`,
        )
        break
      case 'data':
        out.write(
          `${stamp(entry.t)} ${entry.direction === 'up' ? 'client → target' : 'target → client'} ` +
            `${entry.data.length} B  ${preview(entry.data, options.hex)}\n`,
        )
        break
      case 'gap':
        out.write(
          `${stamp(entry.t)} (not recorded: ${entry.up} B up, ${entry.down} B down; the disk fell behind)\n`,
        )
        break
      case 'end':
        out.write(
          `${stamp(entry.t)} end: ${entry.code} ${entry.reason ? `"${entry.reason}" ` : ''}by ${entry.by}; ` +
            `${entry.up} B up, ${entry.down} B down\n`,
        )
        break
    }
  }
}

function stamp(ms: number): string {
  return `+${(ms / 1000).toFixed(3).padStart(9)} s`
}

const MAX_PREVIEW = 64
/** After the last byte, how long replay waits for the target to answer and close. */
const LINGER_MS = 5_000

function preview(data: Buffer, hex: boolean): string {
  const head = data.subarray(0, MAX_PREVIEW)
  const more = data.length > MAX_PREVIEW ? ' …' : ''
  if (hex) return head.toString('hex').replace(/(..)/g, '$1 ').trim() + more
  return JSON.stringify(head.toString('latin1')).replace(/[^\x20-\x7e]/g, '.') + more
}

/**
 * Connects `target` and sends the recording's `up` bytes in order, waiting between chunks as long as the
 * client did (divided by `speed`; `speed` Infinity sends at once). Resolves with the bytes sent and received.
 */
export async function resendRecording(
  file: string,
  target: Target,
  options: { speed: number },
): Promise<{ sent: number; received: number }> {
  const socket =
    target.kind === 'unix'
      ? net.connect({ path: target.path })
      : net.connect({ host: target.host, port: target.port })
  try {
    await once(socket, 'connect')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new GangwayError(
      'ERR_TARGET_UNREACHABLE',
      `cannot connect ${describeTarget(target)} (${code})`,
    )
  }
  let received = 0
  socket.on('data', (chunk: Buffer) => (received += chunk.length))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  let sent = 0
  let last = 0
  for await (const entry of readRecording(file)) {
    if (entry.kind !== 'data' || entry.direction !== 'up') continue
    const wait = (entry.t - last) / options.speed
    last = entry.t
    if (wait >= 1 && Number.isFinite(wait)) await delay(wait)
    if (!socket.write(entry.data)) await once(socket, 'drain')
    sent += entry.data.length
  }
  // Our FIN tells the target we are done; give it a moment to answer and close, but never wait forever.
  socket.end()
  const linger = delay(LINGER_MS, undefined, { ref: false }).then(() => socket.destroy())
  await Promise.race([closed, linger])
  return { sent, received }
}
