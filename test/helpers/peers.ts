/**
 * Behaviours for the far (TCP) end of a tunnel: hash what arrives, push random data with backpressure.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { Digest, randomChunks } from './data.js'

/** Hashes everything the socket receives; resolves on EOF. */
export function hashIncoming(socket: Socket): Promise<Digest> {
  const digest = new Digest()
  socket.on('data', (chunk: Buffer) => digest.update(chunk))
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve(digest))
    socket.once('error', reject)
  })
}

/** Writes `total` random bytes in random-size writes, waiting for 'drain'; resolves with their digest. */
export async function pushRandom(
  socket: Socket,
  total: number,
  maxChunk = 256 * 1024,
): Promise<Digest> {
  const digest = new Digest()
  for (const chunk of randomChunks(total, maxChunk)) {
    digest.update(chunk)
    if (!socket.write(chunk)) await once(socket, 'drain')
  }
  return digest
}

/**
 * A target both ways at once: pushes `total` random bytes (pieces up to `maxChunk`) while hashing what it
 * receives, and ends the socket only once `total` bytes have come in (a raw tunnel has no half-close).
 */
export async function pushAndReceive(
  socket: Socket,
  total: number,
  maxChunk: number,
): Promise<{ sent: Digest; got: Digest }> {
  const got = new Digest()
  const allIn = new Promise<void>((resolve) =>
    socket.on('data', (chunk: Buffer) => {
      got.update(chunk)
      if (got.bytes >= total) resolve()
    }),
  )
  const sent = await pushRandom(socket, total, maxChunk)
  await allIn
  socket.end()
  return { sent, got }
}

/** Collects everything the socket receives; resolves with the bytes on EOF. */
export function collectIncoming(socket: Socket): Promise<Buffer> {
  const parts: Buffer[] = []
  socket.on('data', (chunk: Buffer) => parts.push(chunk))
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve(Buffer.concat(parts)))
    socket.once('error', reject)
  })
}
