/**
 * `--record /proc/nope/rec` spun at ~90 % CPU in Node's recursive mkdir, never listened and ignored SIGTERM.
 * It now fails at once with one line and exit 1. And `--record X` is websockify's file prefix again
 * (`X.<time>-conn<id>.jsonl` beside it), not a directory named X; `X/` is a directory.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import WebSocket from 'ws'
import { once } from 'node:events'
import { portOf, runGangway, spawnGangway } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'

const d = createDisposer()
afterEach(() => d.run())

it.each(['/proc/nope/rec', '/proc/nope/rec/', '/proc/1/nope/'])(
  '--record %s: one line, exit 1, nothing listens',
  async (record) => {
    const result = await runGangway(d, ['--record', record, '127.0.0.1:0', '127.0.0.1:9'])
    expect(result.code).toBe(1)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(/^gangway: --record: cannot (create|record into|write)/)
    expect(result.stdout.join('\n')).not.toMatch(/listening/)
  },
)

it('--record PREFIX writes PREFIX.<time>-conn<id>.jsonl beside it; an existing directory needs a trailing /', async () => {
  const dir = await tempDir(d, 'gangway-record-prefix-')
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const prefix = join(dir, 'session')
  const daemon = spawnGangway(d, [
    '--record',
    prefix,
    '--log-format',
    'json',
    '127.0.0.1:0',
    `127.0.0.1:${echo.port}`,
  ])
  const listening = await daemon.waitForLog((r) => r.msg === 'listening')
  const ws = new WebSocket(`ws://127.0.0.1:${portOf(listening['listen'])}/`)
  await once(ws, 'open')
  ws.send(Buffer.from('hi'))
  await once(ws, 'message')
  ws.close()
  await daemon.waitForLog((r) => r.msg === 'tunnel closed')
  daemon.child.kill('SIGTERM')
  expect((await daemon.exited).code).toBe(0)
  expect(await readdir(dir)).toEqual([expect.stringMatching(/^session\.[-\dTZ]+-conn\d+\.jsonl$/)])

  const refused = await runGangway(d, ['--record', dir, '127.0.0.1:0', '127.0.0.1:9'])
  expect(refused.code).toBe(1)
  expect(refused.stderr[0]).toMatch(
    /is a directory; --record takes a file prefix.*write .*\/ to record into/,
  )
})
