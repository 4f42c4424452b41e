/**
 * Fuzzed `gangway.v1` control messages (docs/protocol.md): the parser answers a valid message or a
 * `ControlMessageError` for any bytes, and a real daemon closes a tunnel that receives a malformed or
 * out-of-order message with 4400, while it keeps serving other tunnels.
 */
import net, { type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import WebSocket from 'ws'
import { ControlMessageError, decodeClientMessage } from '../../src/relay/control-messages.js'
import { CloseCode, INITIAL_CREDIT, SUBPROTOCOL_V1 } from '../../src/protocol.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { closed, openWs } from '../helpers/ws.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())

const RUNS = scale(3_000, 100_000)
const DAEMON_CASES = scale(60, 1_000)

/** The parser's contract: a valid message, or a ControlMessageError; nothing else. */
function decodeOrRefuse(
  data: Buffer,
): ReturnType<typeof decodeClientMessage> | ControlMessageError {
  try {
    const message = decodeClientMessage(data)
    if (message.type === 'credit') {
      expect(Number.isSafeInteger(message.bytes) && message.bytes > 0).toBe(true)
    } else expect(message).toEqual({ type: 'eof' })
    return message
  } catch (err) {
    if (!(err instanceof ControlMessageError)) throw err
    return err
  }
}

/** Values of every JSON type, with the numbers that break naive checks. */
const hostileNumber = fc.oneof(
  fc.constantFrom(0, -0, -1, 0.5, 1.5, 2 ** 53, 2 ** 53 - 1, -(2 ** 53), 1e300, 5e-324),
  fc.double(),
  fc.integer(),
)
const anyValue = fc.oneof(
  hostileNumber,
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 3 }),
)
/** Objects shaped like control messages: right or wrong type names, bytes of any kind, extra keys. */
const messageLike = fc.record(
  {
    type: fc.oneof(
      fc.constantFrom('eof', 'credit', 'open', 'EOF', 'Credit', 'credit ', '', '__proto__'),
      anyValue,
    ),
    bytes: anyValue,
    extra: anyValue,
  },
  { requiredKeys: [] },
)

describe('gangway.v1 control message parser', () => {
  it('arbitrary bytes and text: a valid message or a ControlMessageError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1100 }).map((b) => Buffer.from(b)),
          fc.string({ maxLength: 60 }).map((s) => Buffer.from(s)),
          fc.json({ maxDepth: 3 }).map((s) => Buffer.from(s)),
        ),
        (data) => void decodeOrRefuse(data),
      ),
      { numRuns: RUNS },
    )
  })

  it('JSON-shaped messages: accepted only when exactly valid', () => {
    fc.assert(
      fc.property(messageLike, fc.nat(40), (message, pad) => {
        const text = JSON.stringify(message) + ' '.repeat(pad)
        const result = decodeOrRefuse(Buffer.from(text))
        const valid =
          message.type === 'eof' ||
          (message.type === 'credit' &&
            typeof message.bytes === 'number' &&
            Number.isSafeInteger(message.bytes) &&
            message.bytes > 0)
        expect(result instanceof ControlMessageError).toBe(!valid)
      }),
      { numRuns: RUNS },
    )
  })

  it('refuses messages above 1024 bytes even when they are valid JSON', () => {
    const long = Buffer.from(JSON.stringify({ type: 'eof', pad: 'x'.repeat(1100) }))
    expect(decodeOrRefuse(long)).toBeInstanceOf(ControlMessageError)
  })
})

/** A target that echoes and never ends its side on its own (so `eof` twice is not racing its FIN). */
async function startHalfOpenEcho(): Promise<{ port: number; accepted: () => number }> {
  let count = 0
  const sockets = new Set<Socket>()
  const server = net.createServer({ allowHalfOpen: true }, function echoOnConnection(socket) {
    count++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => socket.write(chunk))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  d.add(() => {
    for (const s of sockets) s.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { port: (server.address() as AddressInfo).port, accepted: () => count }
}

type Step = { kind: 'text'; text: string } | { kind: 'data'; bytes: number }

/** What a well-behaved client may send before the hostile step: credits and data within the window. */
const validPrefix = fc.array(
  fc.oneof(
    fc
      .integer({ min: 1, max: 1_000_000 })
      .map((n): Step => ({ kind: 'text', text: `{"type":"credit","bytes":${n}}` })),
    fc.integer({ min: 1, max: 2_000 }).map((n): Step => ({ kind: 'data', bytes: n })),
  ),
  { maxLength: 4 },
)

/** One step that must end the tunnel with 4400, whatever came before. */
const hostileStep: fc.Arbitrary<Step[]> = fc
  .oneof(
    fc.constantFrom(
      'not json',
      '',
      '[]',
      'null',
      '42',
      '"eof"',
      '{"type":"credit","bytes":NaN}',
      '{"type":"credit","bytes":-1}',
      '{"type":"credit","bytes":0}',
      '{"type":"credit","bytes":1.5}',
      '{"type":"credit","bytes":"100"}',
      '{"type":"credit","bytes":1e300}',
      '{"type":"credit","bytes":9007199254740991}', // overflows the window already granted
      '{"type":"credit"}',
      '{"type":"open"}',
      '{"type":"close"}',
      '{"type":{"nested":"eof"}}',
      `{"type":"eof","pad":"${'x'.repeat(1100)}"}`,
    ),
    fc.string({ maxLength: 30 }).filter((s) => {
      try {
        decodeClientMessage(Buffer.from(s))
        return false
      } catch {
        return true
      }
    }),
  )
  .map((text): Step[] => [{ kind: 'text', text }])
const outOfOrder = fc.constantFrom<Step[]>(
  [
    { kind: 'text', text: '{"type":"eof"}' },
    { kind: 'text', text: '{"type":"eof"}' },
  ],
  [
    { kind: 'text', text: '{"type":"eof"}' },
    { kind: 'data', bytes: 10 },
  ],
  [{ kind: 'data', bytes: INITIAL_CREDIT + 1 }], // beyond any window the daemon can have granted
)

async function runSequence(url: string, steps: readonly Step[]): Promise<number> {
  const ws = await openWs(d, url, { protocols: [SUBPROTOCOL_V1] })
  expect(ws.protocol).toBe(SUBPROTOCOL_V1)
  const done = closed(ws)
  for (const step of steps) {
    if (ws.readyState !== WebSocket.OPEN) break
    if (step.kind === 'text') ws.send(step.text)
    else ws.send(Buffer.alloc(step.bytes, 7))
  }
  return (await done).code
}

describe('gangway.v1 control messages through a daemon', () => {
  it('every malformed or out-of-order message closes its tunnel with 4400; others keep working', async () => {
    console.log('START', performance.now())
    const target = await startHalfOpenEcho()
    // The daemon's up window is then exactly INITIAL_CREDIT: one frame one byte larger always exceeds it.
    const server = await startTunnel(d, tcpTarget(target.port), {
      highWaterMarkBytes: INITIAL_CREDIT,
    })
    const cases = fc.sample(
      fc.tuple(validPrefix, fc.oneof(hostileStep, outOfOrder)).map(([a, b]) => [...a, ...b]),
      { numRuns: DAEMON_CASES, seed: 8 },
    )
    console.log('SAMPLED', performance.now())
    const codes = new Map<number, number>()
    for (const steps of cases) {
      const t0 = performance.now()
      const code = await runSequence(server.url(), steps)
      console.log('T', (performance.now() - t0).toFixed(0), JSON.stringify(steps).slice(0, 120))
      codes.set(code, (codes.get(code) ?? 0) + 1)
      expect(code, JSON.stringify(steps).slice(0, 200)).toBe(CloseCode.BAD_MESSAGE)
    }
    expect(codes).toEqual(new Map([[CloseCode.BAD_MESSAGE, DAEMON_CASES]]))
    expect(target.accepted()).toBe(DAEMON_CASES)
    // A canary: a valid exchange still echoes through the same daemon.
    const ws = await openWs(d, server.url(), { protocols: [SUBPROTOCOL_V1] })
    const echoed = new Promise<string>((resolve) =>
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) resolve(data.toString())
      }),
    )
    ws.send(Buffer.from('canary'))
    expect(await echoed).toBe('canary')
    ws.close()
  })
})
