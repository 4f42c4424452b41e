import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startTcpServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed } from '../helpers/ws.js'
import { readRecording, type RecordingEntry } from '../../src/client/replay.js'
import { runGangway } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

/** A tunnel whose target answers each chunk with "ok:<chunk>", recorded into `dir`/rec. */
async function recordedSession(dir: string) {
  const target = await startTcpServer((socket) =>
    socket.on('data', (c: Buffer) => socket.write(Buffer.concat([Buffer.from('ok:'), c]))),
  )
  d.add(() => target.close())
  const logger = memoryLogger()
  const recordDir = join(dir, 'rec')
  // A trailing / makes it a directory (created); without it, it would be a file prefix.
  const server = await startTunnel(d, tcpTarget(target.port), { record: `${recordDir}/` }, logger)
  // A token in the URL and in a header: neither may reach the recording.
  const ws = new WebSocket(`${server.url()}?token=SECRET-IN-URL`, {
    headers: { Authorization: 'Bearer SECRET-IN-HEADER' },
  })
  d.add(() => ws.terminate())
  await once(ws, 'open')
  for (const text of ['hello', 'binary\u0000bytes']) {
    ws.send(Buffer.from(text))
    await once(ws, 'message')
  }
  const wsClosed = closed(ws)
  ws.close(1000, 'done')
  await wsClosed
  await logger.waitFor('tunnel closed')
  await server.close({ drainTimeoutMs: 1000 })
  const [name] = await readdir(recordDir)
  return { recordDir, file: join(recordDir, name!) }
}

describe('session recording (--record)', () => {
  it('writes one file per tunnel with every payload byte, its direction and time, then the end', async () => {
    const { recordDir, file } = await recordedSession(await tempDir(d, 'gangway-rec-'))
    expect(file).toMatch(/conn\d+\.jsonl$/)
    expect((await stat(recordDir)).mode & 0o777).toBe(0o700)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const entries: RecordingEntry[] = []
    for await (const entry of readRecording(file)) entries.push(entry)
    expect(entries[0]).toMatchObject({
      kind: 'header',
      client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown,
    })
    const data = entries.filter((e) => e.kind === 'data')
    const up = Buffer.concat(data.filter((e) => e.direction === 'up').map((e) => e.data)).toString()
    const down = Buffer.concat(
      data.filter((e) => e.direction === 'down').map((e) => e.data),
    ).toString()
    expect(up).toBe('hellobinary\u0000bytes')
    expect(down).toBe('ok:hellook:binary\u0000bytes')
    const times = data.map((e) => e.t)
    expect([...times].sort((a, b) => a - b)).toEqual(times)
    expect(entries.at(-1)).toMatchObject({
      kind: 'end',
      code: 1000,
      reason: 'done',
      by: 'client',
      up: 17,
      down: 23,
    })
  })

  it('never records a token', async () => {
    const { file } = await recordedSession(await tempDir(d, 'gangway-rec-'))
    const text = await readFile(file, 'utf8')
    expect(text).not.toContain('SECRET')
    expect(Buffer.from(text).toString('base64')).not.toContain(
      Buffer.from('SECRET').toString('base64'),
    )
  })
})

describe('gangway replay', () => {
  it('prints the timeline', async () => {
    const { file } = await recordedSession(await tempDir(d, 'gangway-rec-'))
    const result = await runGangway(d, ['replay', file])
    expect(result.code).toBe(0)
    expect(result.stdout[0]).toMatch(/^# tunnel \d+: 127\.0\.0\.1:\d+ → 127\.0\.0\.1:\d+, started /)
    expect(result.stdout.some((l) => /client → target 5 B {2}"hello"$/.test(l))).toBe(true)
    expect(result.stdout.at(-1)).toMatch(/end: 1000 "done" by client; 17 B up, 23 B down$/)
  })

  it('re-sends the client side to a target: it receives exactly the recorded bytes', async () => {
    const { file } = await recordedSession(await tempDir(d, 'gangway-rec-'))
    let got = ''
    const sink = await startTcpServer((socket) =>
      socket.on('data', (c: Buffer) => (got += c.toString())),
    )
    d.add(() => sink.close())
    const result = await runGangway(d, ['replay', file, '--to', `127.0.0.1:${sink.port}`, '--fast'])
    expect(result.code).toBe(0)
    expect(result.stdout).toEqual([`replayed 17 B to 127.0.0.1:${sink.port}; received 0 B`])
    const socket = await sink.accepted(0)
    if (!socket.readableEnded) await once(socket, 'end')
    expect(got).toBe('hellobinary\u0000bytes')
  })

  it.each([
    [['replay', '/nonexistent.jsonl'], /^gangway: cannot read \/nonexistent\.jsonl \(ENOENT\)$/],
    [['replay', 'FILE_NOT_A_RECORDING'], /line 1: not a gangway recording/],
    [['replay', 'x', '--fast'], /^gangway: --speed and --fast go with --to$/],
  ])('%j: exit 2 and one line', async (args, message) => {
    const dir = await tempDir(d, 'gangway-rec-')
    const notRecording = join(dir, 'x.jsonl')
    await writeFile(notRecording, '{"hello":1}\n')
    const argv = args.map((a) => (a === 'FILE_NOT_A_RECORDING' ? notRecording : a))
    const result = await runGangway(d, argv)
    expect(result.code).toBe(2)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(message)
  })
})
