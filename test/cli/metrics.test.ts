/**
 * /metrics of a real daemon (`bin/gangway.js`), one process and `--workers 2`, checked by Prometheus's own
 * linter (`promtool check metrics`, Debian package `prometheus`, installed by scripts/test-env.sh), and read
 * as an operator's alerts and dashboards read it: real dials only in the dial histogram, refusals by code and
 * reason, opened tunnels, build info, standard process metric names with a worker label, state_up 1.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { VERSION } from '../../src/version.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { childPids, portOf, spawnGangway } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const T_ECHO = 'metrics-echo-token-0123456789'
const T_DOWN = 'metrics-down-token-0123456789'
const ORIGIN = 'https://console.example.com'

/** Runs `promtool check metrics` on the text; resolves with its exit code and output. */
async function promtool(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const spawned = once(child, 'spawn').then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      throw new Error(
        `promtool is missing (apt-get install prometheus; see scripts/test-env.sh): ${err.code}`,
      )
    },
  )
  await spawned
  child.stdin.end(text)
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, output }
}

/** The value of one exact series line, or undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

async function startDaemon(extra: string[]) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const dir = await tempDir(d, 'gangway-metrics-')
  await writeFile(
    join(dir, 'gangway.yaml'),
    [
      `allowedOrigins: [${ORIGIN}]`,
      'routes:',
      '  echo:',
      `    target: 127.0.0.1:${echo.port}`,
      `    tokens: [${T_ECHO}]`,
      '  down:',
      `    target: 127.0.0.1:${await freePort()}`,
      `    tokens: [${T_DOWN}]`,
      '',
    ].join('\n'),
  )
  const proc = spawnGangway(d, [
    '--log-format=json',
    `--config=${join(dir, 'gangway.yaml')}`,
    '--admin=127.0.0.1:0',
    ...extra,
    '127.0.0.1:0',
  ])
  d.add(() => {
    for (const pid of childPids(proc.child.pid!)) process.kill(pid, 'SIGKILL')
  })
  const listening = await proc.waitForLog((r) => r.msg === 'listening')
  const url = `ws://127.0.0.1:${portOf(listening['listen'])}/`
  const metrics = async () =>
    (await fetch(`http://127.0.0.1:${portOf(listening['admin'])}/metrics`)).text()
  return { url, metrics }
}

/** Traffic whose every count is known: one tunnel, one failed dial, three kinds of refusal. */
async function sendKnownTraffic(url: string): Promise<void> {
  const headers = { Origin: ORIGIN }
  const ws = await openWs(d, `${url}?token=${T_ECHO}`, { headers })
  ws.send(Buffer.alloc(1000, 7))
  await once(ws, 'message')
  ws.close()
  await once(ws, 'close')
  // A real dial that fails (nothing listens on the route's port).
  expect((await connectAndClose(`${url}?token=${T_DOWN}`, { headers })).code).toBe(4502)
  // Refusals that never dial: a forbidden Origin, a policy refusal (another route), a bad token.
  const evil = { headers: { Origin: 'https://evil.example' } }
  expect((await connectAndClose(`${url}?token=${T_ECHO}`, evil)).code).toBe(4403)
  expect((await connectAndClose(`${url}?token=${T_ECHO}&route=down`, { headers })).code).toBe(4403)
  expect((await connectAndClose(`${url}?token=not-a-token`, { headers })).code).toBe(4401)
}

function expectKnownCounts(text: string): void {
  const refusals = (code: number, reason: string) =>
    value(text, `gangway_refusals_total{code="${code}",reason="${reason}"}`)
  expect(refusals(4403, 'origin_denied')).toBe(1)
  expect(refusals(4403, 'target_denied')).toBe(1)
  expect(refusals(4401, 'token_invalid')).toBe(1)
  expect(refusals(4502, 'target_refused')).toBe(1)
  // Only the two real dials: the refusals above never dialled.
  expect(value(text, 'gangway_dial_duration_seconds_count{result="connected"}')).toBe(1)
  expect(value(text, 'gangway_dial_duration_seconds_count{result="failed"}')).toBe(1)
  expect(value(text, 'gangway_tunnels_opened_total{route="route:echo"}')).toBe(1)
  expect(
    value(text, `gangway_build_info{version="${VERSION}",nodejs="${process.versions.node}"}`),
  ).toBe(1)
  expect(text).not.toMatch(/^gangway_(process|nodejs)_/m)
}

describe('/metrics', () => {
  it('passes promtool and counts what happened, in one process', async () => {
    const { url, metrics } = await startDaemon([])
    await sendKnownTraffic(url)
    const text = await metrics()
    const lint = await promtool(text)
    expect(lint.output).toBe('')
    expect(lint.code).toBe(0)
    expectKnownCounts(text)
    expect(text).toMatch(/^process_cpu_seconds_total \d/m)
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m)
    expect(text).toMatch(/^# TYPE nodejs_active_handles_total untyped$/m)
  })

  it('passes promtool with --workers 2: process figures per worker, gangway_* summed, state_up 1', async () => {
    const redis = await startRedisServer(d)
    await redis.start()
    const { url, metrics } = await startDaemon(['--workers=2', `--state-redis=${redis.url}`])
    await sendKnownTraffic(url)
    const text = await metrics()
    const lint = await promtool(text)
    expect(lint.output).toBe('')
    expect(lint.code).toBe(0)
    expectKnownCounts(text)
    for (const worker of ['0', '1', 'primary']) {
      expect(text).toMatch(
        new RegExp(`^process_cpu_seconds_total\\{worker="${worker}"\\} \\d`, 'm'),
      )
      expect(text).toMatch(
        new RegExp(`^process_resident_memory_bytes\\{worker="${worker}"\\} \\d`, 'm'),
      )
      expect(text).toMatch(
        new RegExp(`^process_start_time_seconds\\{worker="${worker}"\\} \\d`, 'm'),
      )
    }
    expect(value(text, 'gangway_state_up')).toBe(1)
  })
})
