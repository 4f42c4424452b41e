/**
 * Random payloads and streaming checksums for integrity tests.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto'
import type WebSocket from 'ws'

/** A size from 1 B to `max`, log-uniform so that tiny and huge messages are both common. */
export function randomSize(max: number): number {
  return Math.max(1, Math.min(max, Math.floor(Math.exp(Math.random() * Math.log(max + 1)))))
}

/** Random chunks of random sizes adding up to exactly `total` bytes. */
export function* randomChunks(total: number, maxChunk: number): Generator<Buffer> {
  const pool = randomBytes(Math.min(total, 8 * 1024 * 1024) + maxChunk)
  let left = total
  while (left > 0) {
    const size = Math.min(left, randomSize(maxChunk))
    const offset = Math.floor(Math.random() * (pool.length - size))
    // Copy so every chunk is its own buffer (a relay bug that aliased buffers would show up).
    yield Buffer.from(pool.subarray(offset, offset + size))
    left -= size
  }
}

export class Digest {
  bytes = 0
  readonly #hash: Hash = createHash('sha256')
  update(chunk: Buffer): void {
    this.bytes += chunk.length
    this.#hash.update(chunk)
  }
  hex(): string {
    return this.#hash.digest('hex')
  }
}

/**
 * Sends every chunk as one binary message, keeping at most `window` bytes queued in the client, and hashes
 * what was sent. Resolves when the last message has been handed to the kernel.
 */
export async function sendChunks(
  ws: WebSocket,
  chunks: Iterable<Buffer>,
  window = 8 * 1024 * 1024,
): Promise<Digest> {
  const digest = new Digest()
  for (const chunk of chunks) {
    digest.update(chunk)
    if (ws.bufferedAmount + chunk.length > window) {
      await new Promise<void>((resolve, reject) =>
        ws.send(chunk, { binary: true }, (err) => (err ? reject(err) : resolve())),
      )
    } else {
      ws.send(chunk, { binary: true })
    }
  }
  await new Promise<void>((resolve, reject) =>
    ws.send(Buffer.alloc(0), { binary: true }, (err) => (err ? reject(err) : resolve())),
  )
  return digest
}
