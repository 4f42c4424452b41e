import { afterEach, describe, expect, it } from 'vitest'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import { stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { rawRequest } from '../helpers/raw-http.js'
import { freePort, startBlackhole, startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

async function echoRoundTrip(ws: WebSocket, text: string): Promise<string> {
  ws.send(Buffer.from(text))
  const [m] = (await once(ws, 'message')) as [Buffer]
  return m.toString()
}

describe('GET /healthz', () => {
  it('answers 200 with a small JSON status, in origin and absolute form', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    await openWs(d, server.url())
    const port = (server.address() as { port: number }).port
    for (const target of ['/healthz', `http://127.0.0.1:${port}/healthz?x=1`]) {
      const res = await rawRequest(
        port,
        `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      )
      expect(res).toMatch(/^HTTP\/1\.1 200 /)
      expect(res).toMatch(/Content-Type: application\/json/)
      const body = JSON.parse(res.slice(res.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
      expect(body).toMatchObject({ status: 'ok', tunnels: 1 })
      expect(body.version).toMatch(/^\d+\.\d+\.\d+/)
    }
  })

  it('answers a plain GET without --web with 426 and an explanation', async () => {
    const server = await startTunnel(d, tcpTarget(await freePort()))
    const port = (server.address() as { port: number }).port
    const res = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(res).toMatch(/^HTTP\/1\.1 426 /)
    expect(res).toMatch(/WebSocket endpoint/)
  })
})

describe('graceful drain', () => {
  it('keeps live tunnels relaying, refuses new ones, and finishes when the last tunnel closes', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port))
    const ws = await openWs(d, server.url())
    const port = (server.address() as { port: number }).port
    let done = false
    const closing = server.close({ drainTimeoutMs: 60_000 }).then(() => (done = true))

    expect(await echoRoundTrip(ws, 'during drain')).toBe('during drain')
    const refused = net.connect(port, '127.0.0.1')
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    expect(err.code).toBe('ECONNREFUSED')
    expect(done).toBe(false)

    const wsClosed = closed(ws)
    ws.close(1000)
    await closing
    expect((await wsClosed).code).toBe(1000)
  })

  it('an upgrade whose dial completes during the drain is refused with 1001', async () => {
    const hole = await startBlackhole()
    d.add(() => hole.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(hole.port), { connectTimeoutMs: 300 }, logger)
    const result = connectAndClose(server.url())
    await logger.waitFor('dialling')
    await server.close({ drainTimeoutMs: 60_000 }) // waits for the dial to end (it times out: 4504)
    expect((await result).code).toBe(4504)
  })
})

describe('unix sockets', () => {
  it('listens on unix:/path with the configured mode, replaces a stale socket file, removes it on close', async () => {
    const dir = await tempDir(d, 'gangway-test-')
    const path = join(dir, 'gangway.sock')
    // A stale socket file from a crashed run: bound by a process that exited without unlinking it.
    const { execFileSync } = await import('node:child_process')
    execFileSync('python3', [
      '-c',
      'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])',
      path,
    ])
    expect((await stat(path)).isSocket()).toBe(true)

    const echo = await startEchoServer()
    d.add(() => echo.close())
    const server = await startTunnel(d, tcpTarget(echo.port), {
      listen: { kind: 'unix', path },
      listenMode: 0o600,
    })
    expect(server.url()).toBe(`ws+unix:${path}:/`)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const ws = await openWs(d, server.url())
    expect(await echoRoundTrip(ws, 'over unix')).toBe('over unix')
    ws.close()
    await server.close({ drainTimeoutMs: 1000 })
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('refuses to take over a unix socket another process is listening on', async () => {
    const dir = await tempDir(d, 'gangway-test-')
    const path = join(dir, 'busy.sock')
    const busy = net.createServer().listen(path)
    await once(busy, 'listening')
    d.add(() => new Promise((r) => busy.close(r)))
    const echo = await startEchoServer()
    d.add(() => echo.close())
    await expect(
      startTunnel(d, tcpTarget(echo.port), { listen: { kind: 'unix', path } }),
    ).rejects.toMatchObject({
      code: 'ERR_LISTEN',
      message: `cannot listen on unix:${path}: address already in use`,
    })
  })

  it('refuses to replace a regular file at the listen path', async () => {
    const dir = await tempDir(d, 'gangway-test-')
    const path = join(dir, 'not-a-socket')
    await writeFile(path, 'keep me')
    await expect(
      startTunnel(d, tcpTarget(1), { listen: { kind: 'unix', path } }),
    ).rejects.toMatchObject({ code: 'ERR_LISTEN' })
    expect((await stat(path)).isFile()).toBe(true)
  })

  it('dials a unix socket target', async () => {
    const dir = await tempDir(d, 'gangway-test-')
    const path = join(dir, 'target.sock')
    const target = net.createServer((s) => s.pipe(s)).listen(path)
    await once(target, 'listening')
    d.add(() => new Promise((r) => target.close(r)))
    const server = await startTunnel(d, { kind: 'unix', path })
    const ws = await openWs(d, server.url())
    expect(await echoRoundTrip(ws, 'to unix')).toBe('to unix')
  })
})

/** Resolves once `n` tunnels have reported their close on the diagnostics channel. */
function closedCount(n: number): Promise<void> {
  let seen = 0
  return new Promise((resolve) => {
    const onClose = () => {
      if (++seen < n) return
      unsubscribe('gangway:tunnel:close', onClose)
      resolve()
    }
    subscribe('gangway:tunnel:close', onClose)
  })
}

describe('no leaks', () => {
  it('after 300 tunnels ended through every close path, no socket or timer is left', async () => {
    const resources = () => {
      const counts: Record<string, number> = { TCPSocketWrap: 0, Timeout: 0, TCPServerWrap: 0 }
      for (const r of process.getActiveResourcesInfo()) if (r in counts) counts[r]!++
      return counts
    }
    const target = await startTcpServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        const cmd = chunk.toString()
        if (cmd.startsWith('end')) socket.end('bye')
        else if (cmd.startsWith('reset')) socket.resetAndDestroy()
        else socket.write(chunk)
      })
    })
    d.add(() => target.close())
    const logger = memoryLogger()
    const server = await startTunnel(
      d,
      tcpTarget(target.port),
      { idleTimeoutMs: 60_000, heartbeatMs: 60_000 },
      logger,
    )
    const before = resources()
    const allClosed = closedCount(300)
    const paths = ['client-close', 'terminate', 'end', 'reset'] as const
    for (let i = 0; i < 300; i++) {
      const path = paths[i % paths.length]!
      const ws = new WebSocket(server.url(), { perMessageDeflate: false })
      ws.on('error', () => {})
      await once(ws, 'open')
      const wsClosed = once(ws, 'close')
      if (path === 'client-close') ws.close(1000)
      else if (path === 'terminate') ws.terminate()
      else ws.send(Buffer.from(path))
      await wsClosed
    }
    // Every tunnel reports exactly once, after both of its sockets closed.
    await allClosed
    expect(server.stats()).toMatchObject({ tunnels: 0, dialing: 0, heldBytes: 0 })
    expect(logger.lines.filter((l) => l.msg === 'tunnel closed')).toHaveLength(300)
    // The target's side of every connection is gone too once its server has seen the FIN or RST.
    for (const s of target.sockets) if (!s.closed) await once(s, 'close')
    const after = resources()
    expect(after.TCPSocketWrap).toBe(0)
    expect(after.Timeout).toBeLessThanOrEqual(before.Timeout!)
    expect(after.TCPServerWrap).toBe(before.TCPServerWrap)
  })
})
