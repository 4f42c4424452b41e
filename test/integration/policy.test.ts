import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { dial } from '../../src/targets/dial.js'
import { createTargetPolicy } from '../../src/targets/policy.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

async function echo(): Promise<{ port: number; sockets: unknown[] }> {
  const server = await startEchoServer()
  d.add(() => server.close())
  return server
}

async function tokenDirWith(entries: Record<string, string>): Promise<string> {
  const dir = await tempDir(d, 'gangway-policy-')
  for (const [token, target] of Object.entries(entries)) await writeFile(join(dir, token), target)
  return dir
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) =>
    ws.once('message', (data: Buffer) => resolve(data.toString())),
  )
  ws.send(Buffer.from(text))
  return reply
}

describe('target policy on token-directory targets', () => {
  it('refuses a hostname that resolves to loopback under a wildcard rule, allows it when named', async () => {
    const { port } = await echo()
    const dir = await tokenDirWith({ 'sess-a': `localhost:${port}`, 'sess-b': `127.0.0.1:${port}` })
    const logger = memoryLogger()
    const open = await startAccessTunnel(d, { tokenDir: dir, allow: ['*'] }, logger)
    expect(await connectAndClose(`${open.url}?token=sess-a`)).toMatchObject({
      code: 4403,
      reason: 'forbidden',
    })
    expect(await connectAndClose(`${open.url}?token=sess-b`)).toMatchObject({ code: 4403 })
    const refusal = logger.lines.find((l) => l.msg === 'tunnel refused')
    expect(refusal?.fields['reason']).toMatch(
      /localhost:\d+ \((127\.0\.0\.1|::1)\) is an internal address/,
    )
    expectNoSecretsLogged(logger, ['sess-a', 'sess-b'])

    const named = await startAccessTunnel(
      d,
      { tokenDir: dir, allow: [`localhost:${port}`, `127.0.0.1/32:${port}`] },
      memoryLogger(),
    )
    for (const token of ['sess-a', 'sess-b']) {
      const ws = await openWs(d, `${named.url}?token=${token}`)
      expect(await roundTrip(ws, token)).toBe(token)
      ws.close()
    }
  })

  it('answers 4403 with HTTP 403 under --refuse-with http', async () => {
    const { port } = await echo()
    const dir = await tokenDirWith({ 'sess-c': `127.0.0.1:${port}` })
    const { url } = await startAccessTunnel(
      d,
      { tokenDir: dir, allow: ['10.0.0.0/8'], refuseWith: 'http' },
      memoryLogger(),
    )
    const ws = new WebSocket(`${url}?token=sess-c`)
    ws.on('error', () => {})
    const status = await new Promise<number | undefined>((resolve) =>
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode)),
    )
    expect(status).toBe(403)
  })
})

describe('client-named targets', () => {
  it('are refused unless clientTargets is on, then checked against the policy', async () => {
    const { port } = await echo()
    const dir = await tokenDirWith({})
    const off = await startAccessTunnel(d, { tokenDir: dir, allow: ['*'] }, memoryLogger())
    expect((await connectAndClose(`${off.url}?address=127.0.0.1:${port}`)).code).toBe(4401)

    const on = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`127.0.0.1:${port}`] },
      memoryLogger(),
    )
    const ws = await openWs(d, `${on.url}v1?address=127.0.0.1:${port}`)
    expect(await roundTrip(ws, 'neon')).toBe('neon')
    const viaTarget = await openWs(d, `${on.url}?target=127.0.0.1:${port}`)
    viaTarget.close()
    expect(await connectAndClose(`${on.url}?address=127.0.0.1:${port + 1}`)).toMatchObject({
      code: 4403,
    })
    expect(await connectAndClose(`${on.url}?address=169.254.169.254:80`)).toMatchObject({
      code: 4403,
    })
    expect(await connectAndClose(`${on.url}?address=[::1]:${port}`)).toMatchObject({ code: 4403 })
  })

  it('cannot be turned on without a policy', async () => {
    await expect(startAccessTunnel(d, { clientTargets: true }, memoryLogger())).rejects.toThrow(
      /needs a target policy/,
    )
  })
})

describe('no DNS rebinding', () => {
  it('dials exactly the addresses the policy checked, with no second lookup', async () => {
    const { port } = await echo()
    let lookups = 0
    const policy = createTargetPolicy({
      allow: [`127.0.0.1/32:${port}`],
      deny: [],
      // A name only this resolver knows: if the dial looked it up again, the system resolver would fail.
      lookup: () => {
        lookups++
        return Promise.resolve([{ address: '127.0.0.1', family: 4 }])
      },
    })
    const checked = await policy.check(
      { kind: 'tcp', host: 'rebind.invalid', port },
      { timeoutMs: 1000 },
    )
    const socket = await dial(checked.target, {
      timeoutMs: 2000,
      signal: new AbortController().signal,
      addresses: checked.addresses,
    })
    d.add(() => socket.destroy())
    expect(socket.remoteAddress).toBe('127.0.0.1')
    expect(lookups).toBe(1)
  })
})
