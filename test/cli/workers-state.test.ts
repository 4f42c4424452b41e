/**
 * Readiness of a `--workers` primary with shared state: each worker has its own Redis connection, and the
 * primary's `/readyz` names the worker(s) that lost theirs (`sharedState: unreachable`, `workers`), although
 * the primary's own connection is fine, and stays 200: shared state is reported, never a reason to pull
 * the node. One worker is made to reach Redis through a relay that the test cuts: the config
 * file is edited to point at the relay, then that worker is killed, and its replacement reads the file anew.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startCuttableRelay } from '../helpers/cluster.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { childPids, portOf, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

let redis: ContainerService

beforeAll(async () => {
  redis = await startRedis()
}, 120_000)

afterAll(async () => {
  await redis?.stop()
})

async function readyz(admin: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${admin}/readyz`)
  return { status: res.status, body: await res.json() }
}

describe('gangway --workers with --state-redis', () => {
  it('reports which worker lost its shared state, and stays ready', async () => {
    const relay = await startCuttableRelay(redis.port)
    d.add(() => relay.close())
    const dir = await tempDir(d)
    const configFile = join(dir, 'gangway.json')
    const config = (port: number): string =>
      JSON.stringify({
        tokenFile: join(dir, 'tokens'),
        stateRedis: `redis://127.0.0.1:${port}/0`,
      })
    await writeFile(join(dir, 'tokens'), 'a-token-for-the-readiness-test: 127.0.0.1:9\n')
    await writeFile(configFile, config(redis.port))
    const proc = spawnGangway(d, [
      `--config=${configFile}`,
      '--log-format=json',
      '--workers=2',
      '--admin=0',
      '127.0.0.1:0',
    ])
    d.add(() => {
      for (const pid of childPids(proc.child.pid!)) process.kill(pid, 'SIGKILL')
    })
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const admin = `http://127.0.0.1:${portOf(listening['admin'])}`
    expect(await readyz(admin)).toEqual({
      status: 200,
      body: { status: 'ready', tunnels: 0, sharedState: 'ok' },
    })

    // The replacement of a killed worker reads the edited file: it alone reaches Redis via the relay.
    await writeFile(configFile, config(relay.port))
    const [victim] = childPids(proc.child.pid!)
    process.kill(victim!, 'SIGKILL')
    const exited = await proc.waitForLog((r) => r.msg === 'worker exited; restarting it')
    const index = exited['index'] as number
    const ofVictim = (msg: string) => (r: LogRecord) => r.msg === msg && r['worker'] === index
    await proc.waitForLog((r) => r.msg === 'worker restarted' && r['index'] === index)
    expect(await readyz(admin)).toEqual({
      status: 200,
      body: { status: 'ready', tunnels: 0, sharedState: 'ok' },
    })

    await relay.cut()
    await proc.waitForLog(
      ofVictim('shared state unreachable: new tunnels with tokens are refused (4503)'),
    )
    expect(await readyz(admin)).toEqual({
      status: 200,
      body: { status: 'ready', tunnels: 0, sharedState: 'unreachable', workers: [index] },
    })

    await relay.restore()
    await proc.waitForLog(ofVictim('shared state reachable again'))
    expect(await readyz(admin)).toEqual({
      status: 200,
      body: { status: 'ready', tunnels: 0, sharedState: 'ok' },
    })

    proc.child.kill('SIGTERM')
    expect(await proc.exited).toEqual({ code: 0, signal: null })
  })
})
