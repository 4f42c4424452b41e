import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import {
  MAX_LINE_BYTES,
  startDemoService,
  type DemoService,
} from '../../src/commands/demo-service.js'
import { createDisposer } from '../helpers/disposer.js'

const disposer = createDisposer()

afterEach(() => disposer.run())

async function startService(): Promise<DemoService> {
  const service = await startDemoService()
  disposer.add(() => service.close())
  return service
}

interface Peer {
  socket: Socket
  /** Resolves with the next line that satisfies `match` (lines before it are consumed). */
  until(match: (line: string) => boolean): Promise<string>
  next(): Promise<string>
  /** Every line received so far. */
  seen: string[]
}

async function join(service: DemoService): Promise<Peer> {
  const socket = connect(service.target.port, service.target.host)
  disposer.add(() => socket.destroy())
  await once(socket, 'connect')
  const seen: string[] = []
  let read = 0
  let partial = ''
  let wake: (() => void) | undefined
  socket.setEncoding('utf8')
  socket.on('data', (text: string) => {
    const parts = (partial + text).split('\n')
    partial = parts.pop() ?? ''
    seen.push(...parts)
    wake?.()
  })
  socket.on('close', () => wake?.())
  async function next(): Promise<string> {
    while (read === seen.length) {
      if (socket.destroyed) throw new Error(`socket closed; lines so far: ${seen.join(' | ')}`)
      await new Promise<void>((resolve) => (wake = resolve))
    }
    return seen[read++] ?? ''
  }
  async function until(match: (line: string) => boolean): Promise<string> {
    for (let count = 0; count < 100_000; count++) {
      const line = await next()
      if (match(line)) return line
    }
    throw new Error('no matching line')
  }
  return { socket, next, until, seen }
}

describe('demo chat service', () => {
  it('welcomes each visitor by name and tells them who else is online', async () => {
    const service = await startService()
    const first = await join(service)
    expect(await first.next()).toMatch(/^\* welcome, guest-1! Nobody else is here yet\./)
    const second = await join(service)
    expect(await second.next()).toMatch(/^\* welcome, guest-2! 1 other person is online\./)
    expect(await first.next()).toBe('* guest-2 joined')
  })

  it('broadcasts every line to everyone, sender included, prefixed with the name', async () => {
    const service = await startService()
    const alice = await join(service)
    const bob = await join(service)
    await alice.until((line) => line === '* guest-2 joined')
    alice.socket.write('hello, wörld\r\n')
    expect(await alice.until((line) => !line.startsWith('*'))).toBe('guest-1: hello, wörld')
    expect(await bob.until((line) => !line.startsWith('*'))).toBe('guest-1: hello, wörld')
  })

  it('renames with /nick, lists with /who, and announces leaving', async () => {
    const service = await startService()
    const alice = await join(service)
    const bob = await join(service)
    alice.socket.write('/nick alice\n')
    expect(await bob.until((line) => line.includes('is now'))).toBe('* guest-1 is now alice')
    bob.socket.write('/nick alice\n/nick b c\n/who\n')
    expect(await bob.until((line) => line.includes('taken'))).toBe('* alice is already taken')
    expect(await bob.next()).toMatch(/^\* a name is/)
    expect(await bob.next()).toBe('* online (2): alice, guest-2')
    bob.socket.destroy()
    expect(await alice.until((line) => line.endsWith('left'))).toBe('* guest-2 left')
  })

  it('cuts lines longer than MAX_LINE_BYTES and keeps the next line intact', async () => {
    const service = await startService()
    const peer = await join(service)
    peer.socket.write('x'.repeat(MAX_LINE_BYTES * 3) + '\nshort\n')
    const long = await peer.until((line) => line.startsWith('guest-1:'))
    expect(long).toBe('guest-1: ' + 'x'.repeat(MAX_LINE_BYTES))
    expect(await peer.next()).toBe('guest-1: short')
  })

  it('disconnects a client that stops reading instead of buffering for it', async () => {
    const service = await startService()
    const sleeper = await join(service)
    sleeper.socket.pause()
    const talker = await join(service)
    const line = 'y'.repeat(MAX_LINE_BYTES - 1) + '\n'
    // Loopback socket buffers hold a few MiB; 64 MiB of chat is far more than they and the
    // service's 1 MiB allowance can absorb.
    for (let batch = 0; batch < 256 && !talker.seen.includes('* guest-1 left'); batch++) {
      if (!talker.socket.write(line.repeat(64))) await once(talker.socket, 'drain')
    }
    talker.socket.write('/who\n')
    expect(await talker.until((l) => l.startsWith('* online'))).toBe('* online (1): guest-2')
    expect(talker.seen).toContain('* guest-1 left')
  })

  it('close() disconnects every client', async () => {
    const service = await startDemoService()
    const peer = await join(service)
    await peer.next()
    const closed = once(peer.socket, 'close')
    await service.close()
    await closed
    await service.close() // idempotent
  })
})
