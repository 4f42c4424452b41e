/**
 * Found by the outside attack review (issue 13, finding 1): with `--trust-proxy 127.0.0.1
 * --target-proxy-protocol v2`, one upgrade carrying `X-Forwarded-For: fe80::1%a:b:c:d:e:f:g:h` killed the
 * daemon (`RangeError: Invalid array length` in the PROXY v2 encoder, thrown inside a `.then()` handler:
 * an unhandled rejection). `net.isIP` accepts a zone id with any characters, colons included. With v1 the
 * target got a malformed `PROXY TCP6 fe80::1%a:b:…` line. Now an address is used only once it is a plain
 * IP (no zone id), and the encoder is total: the daemon lives, and the target gets a well-formed header.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import { parseProxyHeader } from '../../src/gateway/proxy-protocol.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTcpServer } from '../helpers/tcp.js'
import { closed } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const ZONED = 'fe80::1%a:b:c:d:e:f:g:h'

/** Reads from `socket` until a complete PROXY header has arrived (bounded by the header's own size). */
async function headerFrom(socket: Socket): Promise<ReturnType<typeof parseProxyHeader>> {
  let buf = Buffer.alloc(0)
  for (let i = 0; i < 100; i++) {
    const parsed = parseProxyHeader(buf)
    if (parsed.kind !== 'incomplete') return parsed
    buf = Buffer.concat([buf, ((await once(socket, 'data')) as [Buffer])[0]])
  }
  throw new Error('no complete header')
}

describe('regression: a zone id in a forwarding header', () => {
  it.each([
    ['v2', { 'X-Forwarded-For': ZONED }],
    ['v2', { 'X-Forwarded-For': `198.51.100.1, ${ZONED}` }],
    ['v2', { Forwarded: `for="[${ZONED}]"` }],
    ['v1', { 'X-Forwarded-For': ZONED }],
    ['v1', { Forwarded: `for="[${ZONED}]:80"` }],
  ] as const)(
    '--target-proxy-protocol %s, %j: the daemon lives and the target gets a well-formed header',
    async (mode, headers) => {
      const target = await startTcpServer()
      d.add(() => target.close())
      const proc = spawnGangway(d, [
        '--log-format',
        'json',
        '--trust-proxy',
        '127.0.0.1',
        '--trust-proxy-header',
        'Forwarded' in headers ? 'Forwarded' : 'X-Forwarded-For',
        '--target-proxy-protocol',
        mode,
        '127.0.0.1:0',
        `127.0.0.1:${target.port}`,
      ])
      const port = portOf((await proc.waitForLog((r) => r.msg === 'listening'))['listen'])
      const url = `ws://127.0.0.1:${port}/`

      const ws = new WebSocket(url, { headers })
      d.add(() => ws.terminate())
      ws.on('error', () => {})
      await once(ws, 'open')
      const header = await headerFrom(await target.accepted(0))
      // The zoned hop is not an address: the nearest hop that is one (the trusted proxy) stays the client.
      expect(header).toMatchObject({ kind: 'header', addresses: { sourceAddress: '127.0.0.1' } })
      const wsClosed = closed(ws)
      ws.close()
      await wsClosed

      // Still alive, still relaying.
      const again = new WebSocket(url)
      d.add(() => again.terminate())
      again.on('error', () => {})
      await once(again, 'open')
      expect(await headerFrom(await target.accepted(1))).toMatchObject({ kind: 'header' })
      expect(proc.child.exitCode).toBeNull()
      expect(proc.stderr.join('\n')).not.toMatch(/RangeError|unhandled/i)
    },
  )
})
