import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import net from 'node:net'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
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

/** Inodes of the TCP sockets listening on 127.0.0.1:`port` (from /proc/net/tcp). */
function listeningInodes(port: number): Set<string> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const inodes = new Set<string>()
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f[1] === local && f[3] === '0A') inodes.add(f[9]!) // 0A: LISTEN
  }
  return inodes
}

/** Inodes of the sockets among the open descriptors of `pid`. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

async function startWorkers(extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const dir = await tempDir(d, 'gangway-workers-')
  await writeFile(join(dir, 'token'), TOKEN)
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const proc = spawnGangway(
    d,
    [
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
    ],
    { env },
  )
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
    // The kernel picks the worker of each connection: open more until both took some (bounded).
    const sockets = await Promise.all(Array.from({ length: 20 }, () => openWs(d, url)))
    let tunnels: Array<{ id: number }> = []
    for (let round = 0; round < 20; round++) {
      tunnels = ((await (await api('/api/tunnels')).json()) as { tunnels: Array<{ id: number }> })
        .tunnels
      if (new Set(tunnels.map((t) => t.id % 2)).size === 2) break
      sockets.push(...(await Promise.all(Array.from({ length: 10 }, () => openWs(d, url)))))
    }
    expect(tunnels).toHaveLength(sockets.length)
    expect(new Set(tunnels.map((t) => t.id)).size).toBe(sockets.length) // ids unique across workers
    expect(new Set(tunnels.map((t) => t.id % 2))).toEqual(new Set([0, 1])) // both workers took some
    // Listed in id order, request after request, whichever worker answers first.
    for (let i = 0; i < 5; i++) {
      const again = (await (await api('/api/tunnels')).json()) as { tunnels: Array<{ id: number }> }
      const ids = again.tunnels.map((t) => t.id)
      expect(ids).toEqual([...ids].sort((a, b) => a - b))
    }
    const metrics = await (await fetch(`${admin}/metrics`)).text()
    expect(metrics).toMatch(
      new RegExp(`^gangway_tunnels_active\\{route="default"\\} ${sockets.length}$`, 'm'),
    )

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

  it('has each worker accept from the listening socket itself, unless NODE_CLUSTER_SCHED_POLICY=rr', async () => {
    // Node's default on Linux (round robin) has the primary accept every connection and pass it on over
    // IPC, which cost more than the workers' whole work per connection in the benchmark.
    for (const [env, workersListen] of [
      [{}, true],
      [{ NODE_CLUSTER_SCHED_POLICY: 'rr' }, false],
    ] as const) {
      const { proc, listening, url } = await startWorkers([], env)
      const ws = await openWs(d, url) // served, either way
      ws.close()
      const listen = listeningInodes(portOf(listening['listen']))
      expect(listen.size).toBe(1)
      const workers = childPids(proc.child.pid!)
      expect(workers).toHaveLength(2)
      for (const pid of workers) {
        const holds = [...socketInodes(pid)].some((inode) => listen.has(inode))
        expect({ env, pid, holds }).toEqual({ env, pid, holds: workersListen })
      }
      proc.child.kill('SIGKILL')
      await proc.exited
    }
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
