import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import type { TLSSocket } from 'node:tls'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { installCert, makeCert } from '../helpers/certs.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

function peerName(ws: WebSocket): string {
  const socket = (ws as unknown as { _socket: TLSSocket })._socket
  return String(socket.getPeerCertificate().subject.CN)
}

async function echo(ws: WebSocket, text: string): Promise<string> {
  ws.send(Buffer.from(text))
  const [m] = (await once(ws, 'message')) as [Buffer]
  return m.toString()
}

async function tlsTunnel(overrides = {}) {
  const dir = await tempDir(d, 'gangway-tls-')
  const first = await makeCert(dir, 'first', 'live')
  const target = await startEchoServer()
  d.add(() => target.close())
  const logger = memoryLogger()
  const server = await startTunnel(
    d,
    tcpTarget(target.port),
    { tlsCert: first.cert, tlsKey: first.key, ...overrides },
    logger,
  )
  return { dir, first, server, logger }
}

describe('TLS listener (--cert/--key)', () => {
  it('serves wss: with the given certificate', async () => {
    const { first, server } = await tlsTunnel()
    expect(server.url()).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/)
    const ws = await openWs(d, server.url(), { ca: first.pem })
    expect(peerName(ws)).toBe('first')
    expect(await echo(ws, 'over tls')).toBe('over tls')
  })

  it('picks up a renewed certificate without dropping live tunnels', async () => {
    const { dir, first, server, logger } = await tlsTunnel()
    const live = await openWs(d, server.url(), { ca: first.pem })
    const second = await makeCert(dir, 'second')
    await installCert(second, first) // renamed over the served files
    await logger.waitFor('tls certificate reloaded')
    const fresh = await openWs(d, server.url(), { ca: second.pem })
    expect(peerName(fresh)).toBe('second')
    expect(await echo(live, 'still here')).toBe('still here')
    expect(peerName(live)).toBe('first')
  })

  it('keeps the previous certificate when the new files do not load', async () => {
    const { first, server, logger } = await tlsTunnel()
    await writeFile(first.key, 'not a key')
    expect(await server.reloadCertificates()).toBe(false)
    const line = await logger.waitFor('tls certificate reload failed; keeping the previous one')
    expect(line.level).toBe('error')
    const ws = await openWs(d, server.url(), { ca: first.pem })
    expect(peerName(ws)).toBe('first')
  })

  it('refuses clients below --tls-min-version', async () => {
    const { first, server } = await tlsTunnel({ tlsMinVersion: 'TLSv1.3' })
    const old = new WebSocket(server.url(), { ca: first.pem, maxVersion: 'TLSv1.2' })
    const [err] = (await once(old, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('EPROTO')
    expect(err.message).toMatch(/protocol version/)
    const modern = await openWs(d, server.url(), { ca: first.pem })
    expect(await echo(modern, 'tls13')).toBe('tls13')
  })

  it('fails to start with a clear error when the certificate file is missing', async () => {
    const target = await startEchoServer()
    d.add(() => target.close())
    await expect(
      startTunnel(d, tcpTarget(target.port), { tlsCert: '/nonexistent/cert.pem' }),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: 'cannot read TLS certificate /nonexistent/cert.pem (ENOENT)',
    })
  })
})
