/**
 * Issue 13, finding 12: `kill -USR1 <daemon>` opened Node's inspector on 127.0.0.1:9229 (code execution
 * for any local user), and `kill -USR2` ended the daemon at once, with no drain and no log line. Both are
 * now logged and ignored, in a single daemon and in a `--workers` primary and its workers; the deploy
 * files start the daemon through bin/gangway.js, which ignores them from its first line.
 */
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { childPids, portOf, REPO_ROOT, spawnGangway } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

async function echoThrough(port: number, text: string): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
  d.add(() => ws.terminate())
  await once(ws, 'open')
  ws.send(Buffer.from(text))
  const [reply] = (await once(ws, 'message')) as [Buffer]
  ws.close()
  return reply.toString()
}

describe('SIGUSR1 and SIGUSR2 (issue 13, finding 12)', () => {
  it('a daemon logs both, opens no inspector, keeps relaying, and still drains on SIGTERM', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const proc = spawnGangway(d, ['--log-format=json', '0', `127.0.0.1:${echo.port}`])
    const port = portOf((await proc.waitForLog((r) => r.msg === 'listening'))['listen'])
    for (const signal of ['SIGUSR1', 'SIGUSR2', 'SIGUSR1'] as const) {
      proc.child.kill(signal)
      await proc.waitForLog((r) => r.msg === `${signal} ignored`)
      expect(await echoThrough(port, signal)).toBe(signal)
    }
    expect(proc.stderr.join('\n')).not.toMatch(/Debugger listening|inspector/i)
    proc.child.kill('SIGTERM')
    expect(await proc.exited).toEqual({ code: 0, signal: null })
    expect(proc.stderr.join('\n')).not.toMatch(/Debugger listening|inspector/i)
  })

  it('a --workers primary and its workers ignore both too', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const proc = spawnGangway(d, [
      '--log-format=json',
      '--workers=2',
      '0',
      `127.0.0.1:${echo.port}`,
    ])
    d.add(() => {
      for (const pid of childPids(proc.child.pid!)) process.kill(pid, 'SIGKILL')
    })
    const port = portOf((await proc.waitForLog((r) => r.msg === 'listening'))['listen'])
    const workers = childPids(proc.child.pid!)
    expect(workers).toHaveLength(2)
    for (const pid of [proc.child.pid!, ...workers]) {
      process.kill(pid, 'SIGUSR1')
      process.kill(pid, 'SIGUSR2')
    }
    await proc.waitForLog((r) => r.msg === 'SIGUSR2 ignored' && r['worker'] === 'primary')
    for (const index of [0, 1]) {
      await proc.waitForLog((r) => r.msg === 'SIGUSR2 ignored' && r['worker'] === index)
    }
    expect(await echoThrough(port, 'still here')).toBe('still here')
    expect(childPids(proc.child.pid!).sort()).toEqual([...workers].sort())
    expect(proc.stderr.join('\n')).not.toMatch(/Debugger listening/)
  })

  it('the deploy files start the daemon through bin/gangway.js, with no inspector flag', async () => {
    const service = await readFile(join(REPO_ROOT, 'deploy/gangway.service'), 'utf8')
    const docker = await readFile(join(REPO_ROOT, 'deploy/Dockerfile'), 'utf8')
    const execStart = /^ExecStart=(.*)$/m.exec(service)?.[1] ?? ''
    const entrypoint = /^ENTRYPOINT (.*)$/m.exec(docker)?.[1] ?? ''
    for (const line of [execStart, entrypoint]) {
      expect(line).toMatch(/bin\/gangway\.js/)
      expect(line).not.toMatch(/--inspect|--debug/)
    }
    const k8s = await readFile(join(REPO_ROOT, 'deploy/kubernetes/gangway.yaml'), 'utf8')
    expect(k8s).not.toMatch(/--inspect|NODE_OPTIONS/)
    expect(k8s).not.toMatch(/command:/) // the image's ENTRYPOINT runs
  })
})
