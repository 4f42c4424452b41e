/**
 * Found by the outside attack review (issue 13, finding 3): with `--cert`, `--handshake-timeout` did not
 * cover the TLS handshake. Only Node's `headersTimeout`/`requestTimeout` were set, and they start once TLS
 * is done; https.Server's own handshake timeout is an idle timer of 120 s. A connection that sent nothing,
 * half a ClientHello, or a ClientHello one byte at a time stayed open for minutes (or for ever). Now one
 * deadline runs from accept to a complete request head, TLS included.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { createDisposer } from '../helpers/disposer.js'
import { makeCert } from '../helpers/certs.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

/** A TLS record header announcing a 16 KiB handshake record: OpenSSL waits for all of it. */
const BIG_RECORD = Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01])

async function tlsServer() {
  const dir = await tempDir(d, 'gangway-tls-timeout-')
  const cert = await makeCert(dir, 'server', 'localhost')
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const server = await startTunnel(d, tcpTarget(echo.port), {
    tlsCert: cert.cert,
    tlsKey: cert.key,
    handshakeTimeoutMs: 1000,
  })
  const port = (server.address() as { port: number }).port
  return { port, ca: cert.pem, url: server.url() }
}

/** Connects raw TCP, runs `act`, and resolves with what the server sent before it closed. */
async function rawUntilClosed(port: number, act: (s: net.Socket) => void): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1')
  d.add(() => socket.destroy())
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'connect')
  act(socket)
  await once(socket, 'close')
  return Buffer.concat(chunks)
}

describe('regression: --handshake-timeout covers the TLS handshake', () => {
  it('closes a connection that sends nothing', { timeout: 30_000 }, async () => {
    const { port } = await tlsServer()
    expect((await rawUntilClosed(port, () => {})).length).toBe(0)
  })

  it('closes a connection that sends half a ClientHello', { timeout: 30_000 }, async () => {
    const { port } = await tlsServer()
    expect((await rawUntilClosed(port, (s) => s.write(BIG_RECORD))).length).toBe(0)
  })

  it(
    'closes a connection that trickles its ClientHello byte by byte',
    { timeout: 30_000 },
    async () => {
      const { port } = await tlsServer()
      let timer: NodeJS.Timeout | undefined
      d.add(() => clearInterval(timer))
      const got = await rawUntilClosed(port, (s) => {
        s.write(BIG_RECORD)
        // The attack itself: a byte well within any idle timeout, for ever.
        timer = setInterval(() => s.writable && s.write(Buffer.from([0x01])), 200)
      })
      clearInterval(timer)
      expect(got.length).toBe(0)
    },
  )

  it(
    'answers 408 when TLS completes but the request head does not',
    { timeout: 30_000 },
    async () => {
      const { port, ca } = await tlsServer()
      const socket = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' })
      d.add(() => socket.destroy())
      socket.on('error', () => {})
      await once(socket, 'secureConnect')
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n') // and never the blank line
      let text = ''
      socket.on('data', (c: Buffer) => (text += c.toString()))
      await once(socket, 'close')
      expect(text).toMatch(/^HTTP\/1\.1 408 /)
    },
  )

  it('still serves wss: clients', async () => {
    const { url, ca } = await tlsServer()
    const ws = await openWs(d, url.replace('127.0.0.1', 'localhost'), { ca })
    ws.send('hello')
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('hello')
  })
})
