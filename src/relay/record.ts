/**
 * @module relay/record
 * Session recording (`--record PREFIX`, websockify's file prefix; off by default): one JSON Lines file per tunnel holding every payload
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
import { constants, createWriteStream, type WriteStream } from 'node:fs'
import { access, mkdir, stat } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
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

/** Directories `prepareRecording` may create above the recording directory: a bound, not a real limit. */
const MAX_NEW_DIRS = 32

/**
 * The file one tunnel's recording goes to, for `--record VALUE`: websockify's file prefix,
 * `VALUE.<time>-conn<id>.jsonl` beside it, or with a trailing `/` a directory holding `<time>-conn<id>.jsonl`.
 */
export function recordingFile(value: string, startedAt: Date, conn: number): string {
  const name = `${startedAt.toISOString().replace(/[:.]/g, '-')}-conn${conn}.jsonl`
  return value.endsWith('/') || value.endsWith(sep) ? join(value, name) : `${value}.${name}`
}

/**
 * Checks, before anything listens, that recordings can be written: a directory (`VALUE/`) is created, mode
 * 0700, with its missing parents; a prefix needs its directory to exist. Every failure is one line naming the
 * path and the errno; a prefix naming an existing directory is refused (Gangway 0.1 read it as a directory).
 * @throws {Error} with a one-line message
 */
export async function prepareRecording(
  value: string,
  options: { create?: boolean } = {},
): Promise<void> {
  const isDir = value.endsWith('/') || value.endsWith(sep)
  if (!isDir) {
    const info = await stat(value).catch(() => undefined)
    if (info?.isDirectory()) {
      throw new Error(
        `${value} is a directory; --record takes a file prefix (websockify's meaning): write ${value}/ to record into the directory`,
      )
    }
  }
  const dir = isDir ? value.replace(/[/\\]+$/, '') || '/' : dirname(value)
  if (isDir && options.create === false) {
    // `gangway check`: a directory the daemon would create is fine; one that exists must be writable.
    if ((await stat(dir).catch(() => undefined)) === undefined) return
  } else if (isDir) await makeDirectory(dir)
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot record into ${dir}: ${err.code ?? err.message}`)
  })
  if (!info.isDirectory()) throw new Error(`cannot record into ${dir}: not a directory`)
  await access(dir, constants.W_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot write recordings into ${dir}: ${err.code ?? err.message}`)
  })
}

/**
 * `mkdir -p`, mode 0700, one level at a time: Node's `recursive` mkdir loops forever on paths such as
 * `/proc/nope/rec` (the kernel answers ENOENT for a parent that exists).
 */
async function makeDirectory(dir: string): Promise<void> {
  const missing: string[] = []
  let at = dir
  for (let i = 0; i < MAX_NEW_DIRS; i++) {
    const exists = await stat(at).then(
      () => true,
      () => false,
    )
    if (exists) break
    missing.unshift(at)
    const parent = dirname(at)
    if (parent === at) break
    at = parent
  }
  for (const path of missing) {
    await mkdir(path, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') return
      throw new Error(`cannot create the recording directory ${path}: ${err.code ?? err.message}`)
    })
  }
}

/** Opens a recording file for one tunnel; errors (disk full, permissions) are reported once to `onError`. */
export function startRecording(
  value: string,
  meta: RecordingMeta,
  onError: (err: Error) => void,
): Recorder {
  const startedAt = new Date()
  const t0 = performance.now()
  const file: WriteStream = createWriteStream(recordingFile(value, startedAt, meta.conn), {
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
