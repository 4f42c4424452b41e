import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { makeCa, makeLeaf, type CertFiles } from '../helpers/certs.js'
import { Digest } from '../helpers/data.js'
import { hashIncoming, pushRandom } from '../helpers/peers.js'
import { startTlsTarget, type TlsTargetOptions } from '../helpers/tls-target.js'
import { startTunnel } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'
import type { Config, Target } from '../../src/config/options.js'
import type { BackpressureEvent } from '../../src/events.js'
import { INITIAL_CREDIT, SUBPROTOCOL_V1 } from '../../src/protocol.js'
import { OWN_READ } from '../../src/relay/read-buffers.js'

const KiB = 1024
const MiB = 1024 * KiB

const d = createDisposer()
afterEach(() => d.run())

let dir: string
let ca: CertFiles
let leaf: { cert: string; key: string }
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gangway-target-tls-flow-'))
  ca = await makeCa(dir)
  const files = await makeLeaf(dir, ca, 'target.test', 'server')
  leaf = { cert: files.pem, key: await readFile(files.key, 'utf8') }
})
afterAll(() => rm(dir, { recursive: true, force: true }))

async function tlsTunnel(onSocket: TlsTargetOptions['onSocket'], overrides: Partial<Config> = {}) {
  const target = await startTlsTarget({ ...leaf, ...(onSocket ? { onSocket } : {}) })
  d.add(() => target.close())
  const at: Target = { kind: 'tcp', host: '127.0.0.1', port: target.port, tls: true }
  const server = await startTunnel(d, at, { targetCa: ca.cert, ...overrides })
  return { target, server }
}

/**
 * The most bytes the daemon held, sampled at every backpressure event (and at each `sample()`);
 * `firstPause` resolves at the first pause.
 */
function watchHeldBytes(server: { stats(): { heldBytes: number } }) {
  let max = 0
  let paused: () => void = () => {}
  const firstPause = new Promise<void>((resolve) => (paused = resolve))
  const sample = (): void => {
    max = Math.max(max, server.stats().heldBytes)
  }
  const onEvent = (message: unknown) => {
    sample()
    if ((message as BackpressureEvent).paused) paused()
  }
  subscribe('gangway:tunnel:backpressure', onEvent)
  d.add(() => unsubscribe('gangway:tunnel:backpressure', onEvent))
  return { firstPause, sample, max: () => max }
}

describe('tls:// targets: flow control and ends', () => {
  it('a TLS target that does not read: the daemon holds at most the high-water mark plus one read, and every byte arrives once it reads', async () => {
    const pushedBytes = 64 * MiB
    const { target, server } = await tlsTunnel((socket) => socket.pause(), {
      highWaterMarkBytes: MiB,
    })
    const held = watchHeldBytes(server)
    const sampler = setInterval(held.sample, 5)
    d.add(() => clearInterval(sampler))
    const ws = await openWs(d, server.url())
    const far = await target.accepted(0)
    const sent = new Digest()
    const pool = randomBytes(16 * MiB)
    for (let offset = 0; offset < pushedBytes; offset += 64 * KiB) {
      const chunk = pool.subarray(offset % pool.length, (offset % pool.length) + 64 * KiB)
      sent.update(chunk)
      ws.send(chunk)
    }
    await held.firstPause
    expect(ws.bufferedAmount).toBeGreaterThan(32 * MiB) // the pressure reached the client
    const received = hashIncoming(far)
    far.resume()
    const wsClosed = closed(ws)
    ws.close(1000)
    const got = await received // the target's 'end': our close_notify after the last byte
    expect(got.bytes).toBe(pushedBytes)
    expect(got.hex()).toBe(sent.hex())
    expect((await wsClosed).code).toBe(1000)
    expect(held.max()).toBeLessThanOrEqual(MiB + OWN_READ)
  })

  it('a client that does not read: the TLS target is paused at the high-water mark, and every byte arrives', async () => {
    const pushedBytes = 64 * MiB
    let pushed: Promise<Digest> | undefined
    const { server } = await tlsTunnel(
      (socket) => {
        pushed = pushRandom(socket, pushedBytes).then((digest) => {
          socket.end()
          return digest
        })
      },
      { highWaterMarkBytes: MiB },
    )
    const held = watchHeldBytes(server)
    const ws = new WebSocket(server.url(), { perMessageDeflate: false })
    d.add(() => ws.terminate())
    const received = new Digest()
    ws.on('message', (data: Buffer) => received.update(data))
    const wsClosed = closed(ws)
    await once(ws, 'open')
    ws.pause() // the browser that never reads
    await held.firstPause
    ws.resume()
    expect((await wsClosed).code).toBe(1000)
    const sent = await pushed!
    expect(received.bytes).toBe(pushedBytes)
    expect(received.hex()).toBe(sent.hex())
    expect(held.max()).toBeLessThanOrEqual(MiB + 128 * KiB)
  })

  it('the client closes first: the TLS target reads every byte, then a clean end', async () => {
    const { target, server } = await tlsTunnel((socket) => socket.resume())
    const ws = await openWs(d, server.url())
    const received = hashIncoming(await target.accepted(0))
    const payload = randomBytes(3 * MiB + 17)
    ws.send(payload)
    ws.close(1000)
    const want = new Digest()
    want.update(payload)
    expect((await received).hex()).toBe(want.hex())
  })

  it('gangway.v1 half-close both ways over TLS: eof from the target, data still flows up, then eof from the client', async () => {
    const { target, server } = await tlsTunnel((socket) => {
      socket.allowHalfOpen = true
      socket.end('bye') // close_notify: our write side stays open
    })
    const ws = new WebSocket(server.url(), [SUBPROTOCOL_V1], { perMessageDeflate: false })
    d.add(() => ws.terminate())
    const control: string[] = []
    let down = ''
    const events = new EventTarget()
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) down += data.toString()
      else {
        const { type } = JSON.parse(data.toString()) as { type: string }
        if (type !== 'credit') control.push(type)
      }
      events.dispatchEvent(new Event('message'))
    })
    await once(ws, 'open')
    const far = await target.accepted(0)
    const upstream = hashIncoming(far)
    while (!control.includes('eof')) await once(events, 'message')
    expect(down).toBe('bye')
    const payload = randomBytes(INITIAL_CREDIT) // exactly the initial window: no credit needed
    ws.send(payload)
    const wsClosed = closed(ws)
    ws.send(JSON.stringify({ type: 'eof' }))
    const want = new Digest()
    want.update(payload)
    expect((await upstream).hex()).toBe(want.hex())
    expect(await wsClosed).toEqual({ code: 1000, reason: 'both sides closed' })
    expect(control).toEqual(['open', 'eof'])
  })
})
