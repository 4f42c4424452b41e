import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { closed, openWs } from '../helpers/ws.js'
import { childPids, portOf, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'workers-admin-token-0123456789'
const isListening = (r: LogRecord): boolean => r.msg === 'listening'

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function startWorkers(extra: string[] = []) {
  const dir = await tempDir(d, 'gangway-workers-')
  await writeFile(join(dir, 'token'), TOKEN)
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const proc = spawnGangway(d, [
    '--log-format',
    'json',
    '--workers',
    '2',
    '--admin',
    '0',
    '--admin-token-file',
    join(dir, 'token'),
    ...extra,
    '127.0.0.1:0',
    `127.0.0.1:${echo.port}`,
  ])
  d.add(() => {
    for (const pid of childPids(proc.child.pid!)) process.kill(pid, 'SIGKILL')
  })
  const listening = await proc.waitForLog(isListening)
  const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
  const url = `ws://127.0.0.1:${portOf(listening['listen'])}/`
  const api = async (path: string, init: RequestInit = {}) =>
    fetch(`${admin}${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}` } })
  return { proc, listening, admin, url, api }
}

describe('gangway --workers', () => {
  it('serves from every worker; metrics and the admin API cover them all; closing by id reaches the right one', async () => {
    const { listening, url, api, admin } = await startWorkers()
    expect(listening['workers']).toBe(2)
    const sockets = await Promise.all(Array.from({ length: 20 }, () => openWs(d, url)))
    const { tunnels } = (await (await api('/api/tunnels')).json()) as {
      tunnels: Array<{ id: number }>
    }
    expect(tunnels).toHaveLength(20)
    expect(new Set(tunnels.map((t) => t.id)).size).toBe(20) // ids unique across workers
    expect(new Set(tunnels.map((t) => t.id % 2))).toEqual(new Set([0, 1])) // both workers took some
    // Listed in id order, request after request, whichever worker answers first.
    for (let i = 0; i < 5; i++) {
      const again = (await (await api('/api/tunnels')).json()) as { tunnels: Array<{ id: number }> }
      const ids = again.tunnels.map((t) => t.id)
      expect(ids).toEqual([...ids].sort((a, b) => a - b))
    }
    const metrics = await (await fetch(`${admin}/metrics`)).text()
    expect(metrics).toMatch(/^gangway_tunnels_active\{route="default"\} 20$/m)

    // Close the tunnel of one socket by its id: find it by its client port.
    const target = sockets[7]!
    const port = (target as unknown as { _socket: net.Socket })._socket.localPort
    const listed = (await (await api('/api/tunnels')).json()) as {
      tunnels: Array<{ id: number; client: string }>
    }
    const mine = listed.tunnels.find((t) => t.client === `127.0.0.1:${port}`)!
    const wsClosed = closed(target)
    expect((await api(`/api/tunnels/${mine.id}/close`, { method: 'POST' })).status).toBe(202)
    expect((await wsClosed).code).toBe(4410)
  })

  it('drains every worker on SIGTERM, keeps live tunnels until they end, and leaves no process behind', async () => {
    const { proc, url } = await startWorkers()
    const workers = childPids(proc.child.pid!)
    expect(workers).toHaveLength(2)
    const ws = await openWs(d, url)
    proc.child.kill('SIGTERM')
    await proc.waitForLog((r) => r.msg === 'draining' && r['worker'] === 'primary')
    ws.send(Buffer.from('still relayed'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('still relayed')
    ws.close()
    expect((await proc.exited).code).toBe(0)
    expect(workers.filter(isAlive)).toEqual([])
  })

  it('restarts a worker that dies, and keeps serving', async () => {
    const { proc, url } = await startWorkers()
    const [victim] = childPids(proc.child.pid!)
    process.kill(victim!, 'SIGKILL')
    const restart = await proc.waitForLog((r) => r.msg === 'worker exited; restarting it')
    expect(restart).toMatchObject({ signal: 'SIGKILL', restartInMs: 1000, worker: 'primary' })
    expect(restart['index']).toBeTypeOf('number')
    // Each key once: the line is the primary's (`worker`), about worker `index`.
    const raw = proc.stdout.find((line) => line.includes('worker exited; restarting it'))
    expect(raw?.match(/"worker":/g)).toHaveLength(1)
    // Served meanwhile by the other worker, and afterwards by both again.
    const ws = await openWs(d, url)
    ws.send(Buffer.from('x'))
    await once(ws, 'message')
    const restarted = await proc.waitForLog((r) => r.msg === 'worker restarted')
    expect(restarted['index']).toBe(restart['index'])
    expect(
      proc.stdout.find((line) => line.includes('worker restarted'))?.match(/"worker":/g),
    ).toHaveLength(1)
    expect(childPids(proc.child.pid!)).toHaveLength(2)
    proc.child.kill('SIGTERM')
    ws.close()
    expect((await proc.exited).code).toBe(0)
  })

  it('fails to start, with exit 1 and one line, when the workers cannot listen', async () => {
    const busy = net.createServer().listen(0, '127.0.0.1')
    await once(busy, 'listening')
    d.add(() => new Promise((r) => busy.close(r)))
    const port = (busy.address() as net.AddressInfo).port
    const result = await runGangway(d, ['--workers', '2', `127.0.0.1:${port}`, '127.0.0.1:9'])
    expect(result.code).toBe(1)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(/^gangway: worker \d exited during startup/)
  })
})
