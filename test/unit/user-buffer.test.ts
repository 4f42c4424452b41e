/**
 * relay/user-buffer reaches into Node (net.Socket's private onread fields and the handle's useUserBuffer)
 * to make an accepted socket read into buffers we supply. This pins that reliance on the running Node
 * (CI runs the version in `engines`): if a release renames or drops those internals, these fail, and
 * the daemon falls back to Node's own reads (the last tests) rather than misbehave.
 */
import { afterEach, describe, expect, it } from 'vitest'
import net from 'node:net'
import tls from 'node:tls'
import { once } from 'node:events'
import { setImmediate as tick } from 'node:timers/promises'
import { readIntoUserBuffers } from '../../src/relay/user-buffer.js'
import { createDisposer } from '../helpers/disposer.js'
import { connectedPair } from '../helpers/tcp.js'
import { readFile } from 'node:fs/promises'
import { makeCert } from '../helpers/certs.js'
import { tempDir } from '../helpers/tmp.js'

const d = createDisposer()
afterEach(() => d.run())

/** Waits turn by turn of the event loop until `done()` holds (bounded: 100,000 turns). */
async function until(done: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100_000; turn++) {
    if (done()) return
    await tick()
  }
  throw new Error('the condition never held')
}

describe('reads of an accepted socket into our own buffers (Node internals, pinned)', () => {
  it('every read lands in the buffer the generator supplied, and the callback sees it', async () => {
    const { client, accepted } = await connectedPair(d)
    const supplied: Buffer[] = []
    const seen: Array<{ bytes: number; same: boolean; data: string }> = []
    const ok = readIntoUserBuffers(accepted, {
      buffer: () => {
        supplied.push(Buffer.alloc(1024))
        return supplied.at(-1)!
      },
      callback: (bytes, buffer) => {
        seen.push({
          bytes,
          same: buffer === supplied.at(-1),
          data: buffer.subarray(0, bytes).toString(),
        })
        return true
      },
    })
    expect(ok).toBe(true)
    const dataEvents: Buffer[] = []
    accepted.on('data', (chunk: Buffer) => dataEvents.push(chunk))
    for (const word of ['one', 'two', 'three']) {
      client.write(word)
      await until(() => seen.length > 0 && seen.at(-1)!.data === word)
    }
    expect(seen.map((s) => s.data)).toEqual(['one', 'two', 'three'])
    expect(seen.every((s) => s.same)).toBe(true)
    // A new buffer was asked for after every read; no bytes went through the stream.
    expect(supplied.length).toBe(seen.length + 1)
    expect(dataEvents).toEqual([])
  })

  it("pause() stops the reads, resume() restarts them, and the peer's FIN still ends the stream", async () => {
    const { client, accepted } = await connectedPair(d)
    const buffer = Buffer.alloc(64 * 1024)
    let got = ''
    readIntoUserBuffers(accepted, {
      buffer: () => buffer,
      callback: (bytes, into) => {
        got += into.subarray(0, bytes).toString()
        return true
      },
    })
    accepted.resume()
    client.write('a')
    await until(() => got === 'a')
    accepted.pause()
    client.write('b')
    // Let the byte reach the paused socket's kernel buffer: the peer's write completes, then many turns.
    await new Promise<void>((resolve) => client.write('', () => resolve()))
    for (let i = 0; i < 50; i++) await tick()
    expect(got).toBe('a')
    accepted.resume()
    await until(() => got.length >= 2)
    const ended = once(accepted, 'end')
    client.end()
    await ended
    expect(got).toBe('ab')
  })

  it('leaves a socket without a handle, or a TLS socket, to Node (false, nothing changed)', async () => {
    const reads = { buffer: () => Buffer.alloc(16), callback: () => true }
    expect(readIntoUserBuffers(new net.Socket(), reads)).toBe(false)

    const files = await makeCert(await tempDir(d), 'user-buffer')
    const server = tls.createServer({
      key: await readFile(files.key),
      cert: await readFile(files.cert),
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    d.add(() => void server.close())
    const port = (server.address() as net.AddressInfo).port
    const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
    d.add(() => client.destroy())
    const [accepted] = (await once(server, 'secureConnection')) as [tls.TLSSocket]
    d.add(() => accepted.destroy())
    expect(readIntoUserBuffers(accepted, reads)).toBe(false)
    // It still reads through Node's own path.
    client.write('plain')
    const [chunk] = (await once(accepted, 'data')) as [Buffer]
    expect(chunk.toString()).toBe('plain')
  })
})
