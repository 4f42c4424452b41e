/**
 * Reported in issue 14: the writable took only Uint8Array. Two `ArrayBuffer` writes made close together
 * arrived as zeros (`00 00 00 00 00 00` for `01 … 06`); an ArrayBuffer then a Uint8Array as `00 00 03 04 05`;
 * a `DataView` threw `chunk.slice is not a function`; a string write resolved and wedged the socket (later
 * valid writes were never sent, no error). Every BufferSource is now accepted and copied; anything else
 * rejects that one write with a TypeError and the socket stays usable.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { collectIncoming } from '../helpers/peers.js'
import { startTcpServer } from '../helpers/tcp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { connectVia } from '../helpers/shim.js'

const d = createDisposer()
afterEach(() => d.run())

async function sink() {
  const target = await startTcpServer()
  d.add(() => target.close())
  const server = await startTunnel(d, tcpTarget(target.port))
  return { target, url: server.url() }
}

const hex = (b: Buffer) => b.toString('hex')

describe('regression: BufferSource writes', () => {
  it('two ArrayBuffer writes made close together arrive intact', async () => {
    const { target, url } = await sink()
    const socket = connectVia(d, url)
    const writer = socket.writable.getWriter()
    await Promise.all([
      writer.write(new Uint8Array([1, 2, 3]).buffer),
      writer.write(new Uint8Array([4, 5, 6]).buffer),
    ])
    await writer.close()
    expect(hex(await collectIncoming(await target.accepted(0)))).toBe('010203040506')
  })

  it('an ArrayBuffer then a Uint8Array, a DataView and typed arrays with offsets arrive intact', async () => {
    const { target, url } = await sink()
    const socket = connectVia(d, url)
    const writer = socket.writable.getWriter()
    const backing = new Uint8Array([0xaa, 0xbb, 6, 7, 0xcc, 0xdd]).buffer
    const writes = [
      writer.write(new Uint8Array([1, 2]).buffer),
      writer.write(new Uint8Array([3, 4, 5])),
      writer.write(new DataView(backing, 2, 2)),
      writer.write(new Uint16Array([0x0908])), // little-endian on every platform Node runs on
      writer.write(new Uint8Array(backing).subarray(4, 6)),
      writer.write(new Int8Array([-1])),
      writer.write(new Float64Array(0)),
      writer.write(new ArrayBuffer(0)),
    ]
    await Promise.all(writes)
    await writer.close()
    expect(hex(await collectIncoming(await target.accepted(0)))).toBe(
      '0102030405060708' + '09ccddff',
    )
  })

  it('a string write rejects with a TypeError and later writes still go through', async () => {
    const { target, url } = await sink()
    const socket = connectVia(d, url)
    const writer = socket.writable.getWriter() as WritableStreamDefaultWriter<unknown>
    await expect(writer.write('PING\r\n')).rejects.toBeInstanceOf(TypeError)
    await expect(writer.write({ length: 3 })).rejects.toBeInstanceOf(TypeError)
    await expect(writer.write(undefined)).rejects.toBeInstanceOf(TypeError)
    await writer.write(new TextEncoder().encode('PING\r\n'))
    await writer.close()
    expect((await collectIncoming(await target.accepted(0))).toString()).toBe('PING\r\n')
    await socket.closed
  })
})
