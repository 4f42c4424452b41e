/**
 * @module relay/record
 * Session recording (`--record DIR`, off by default): one JSON Lines file per tunnel holding every payload
 * byte with its direction and time, for debugging a protocol exchange. Recording never slows a tunnel: if
 * the disk falls behind, chunks are dropped and a `gap` record says how many bytes are missing. Only
 * payload and the tunnel's metadata are written: never a header, a URL or a token.
 *
 * Format (one JSON object per line; see docs/recording.md):
 *   {"format":"gangway-recording","version":1,"conn":17,"client":"…","target":"…","startedAt":"ISO time"}
 *   {"t":12.345,"d":"up","data":"<base64>"}          up = client → target, down = target → client
 *   {"t":40.1,"gap":{"up":0,"down":65536}}           bytes not recorded because the disk fell behind
 *   {"t":512.9,"end":{"code":1000,"reason":"…","by":"target","up":1834,"down":99120}}
 * Knows nothing of tokens or HTTP.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { TunnelResult } from './tunnel-result.js'

export const RECORDING_FORMAT = 'gangway-recording'
export const RECORDING_VERSION = 1

/** Bytes a recording may have waiting for the disk before chunks are dropped. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024

export interface Recorder {
  up(chunk: Buffer): void
  down(chunk: Buffer): void
  end(result: TunnelResult): void
}

export interface RecordingMeta {
  conn: number
  client: string
  target: string
}

/** Ensures the recording directory exists, readable by its owner only. */
export async function prepareRecordingDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
}

/** Opens a recording file for one tunnel; errors (disk full, permissions) are reported once to `onError`. */
export function startRecording(
  dir: string,
  meta: RecordingMeta,
  onError: (err: Error) => void,
): Recorder {
  const startedAt = new Date()
  const t0 = performance.now()
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const file: WriteStream = createWriteStream(join(dir, `${stamp}-conn${meta.conn}.jsonl`), {
    flags: 'wx',
    mode: 0o600,
  })
  let failed = false
  let gapUp = 0
  let gapDown = 0
  file.on('error', function recordingOnError(err) {
    if (failed) return
    failed = true
    onError(err)
  })
  write({
    format: RECORDING_FORMAT,
    version: RECORDING_VERSION,
    ...meta,
    startedAt: startedAt.toISOString(),
  })

  function write(record: object): void {
    if (!failed) file.write(JSON.stringify(record) + '\n')
  }

  function chunk(direction: 'up' | 'down', data: Buffer): void {
    if (failed) return
    if (file.writableLength > MAX_PENDING_BYTES) {
      if (direction === 'up') gapUp += data.length
      else gapDown += data.length
      return
    }
    const t = round(performance.now() - t0)
    if (gapUp + gapDown > 0) {
      write({ t, gap: { up: gapUp, down: gapDown } })
      gapUp = gapDown = 0
    }
    write({ t, d: direction, data: data.toString('base64') })
  }

  return {
    up: (data) => chunk('up', data),
    down: (data) => chunk('down', data),
    end(result) {
      const t = round(performance.now() - t0)
      if (gapUp + gapDown > 0) write({ t, gap: { up: gapUp, down: gapDown } })
      write({
        t,
        end: {
          code: result.code,
          reason: result.reason,
          by: result.initiator,
          up: result.bytesUp,
          down: result.bytesDown,
        },
      })
      file.end()
    },
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
