import { mkdir, rename, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { tokenDir } from '../../src/targets/token-dir.js'
import { createAccessFromConfig } from '../../src/auth/from-config.js'
import { DEFAULTS } from '../../src/config/options.js'

const d = createDisposer()
afterEach(() => d.run())

async function echo(): Promise<number> {
  const server = await startEchoServer()
  d.add(() => server.close())
  return server.port
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) =>
    ws.once('message', (data: Buffer) => resolve(data.toString())),
  )
  ws.send(Buffer.from(text))
  return reply
}

describe('token file', () => {
  it('reloads on change, atomically, while live tunnels keep running', async () => {
    const dir = await tempDir(d, 'gangway-tokens-')
    const port = await echo()
    const file = join(dir, 'tokens')
    await writeFile(file, `# tokens\nold-token-1: 127.0.0.1:${port}\n`)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(d, { tokenFile: file }, logger)
    const live = await openWs(d, `${url}?token=old-token-1`)
    expect(await roundTrip(live, 'before')).toBe('before')

    // Replace the file the way deploy tools do (write elsewhere, rename over it).
    await writeFile(join(dir, 'tokens.new'), `new-token-2: 127.0.0.1:${port}\n`)
    const reloaded = logger.waitFor('token file reloaded')
    await rename(join(dir, 'tokens.new'), file)
    expect((await reloaded).fields['tokens']).toBe(1)

    expect(await roundTrip(live, 'during')).toBe('during') // the live tunnel is untouched
    expect((await connectAndClose(`${url}?token=old-token-1`)).code).toBe(4401)
    const fresh = await openWs(d, `${url}?token=new-token-2`)
    expect(await roundTrip(fresh, 'after')).toBe('after')
    expectNoSecretsLogged(logger, ['old-token-1', 'new-token-2'])
  })

  it('keeps the previous tokens when a reload finds a bad line, and says where', async () => {
    const dir = await tempDir(d, 'gangway-tokens-')
    const port = await echo()
    const file = join(dir, 'tokens')
    await writeFile(file, `good-token: 127.0.0.1:${port}\n`)
    const logger = memoryLogger()
    const { url, access } = await startAccessTunnel(d, { tokenFile: file }, logger)
    await writeFile(file, `good-token: 127.0.0.1:${port}\nbroken-line-without-separator\n`)
    await expect(access?.reload()).rejects.toThrow(`token file ${file}:2:`)
    const ws = await openWs(d, `${url}?token=good-token`)
    expect(await roundTrip(ws, 'x')).toBe('x')
  })

  it('reads every regular file of a directory (dotfiles and subdirectories skipped)', async () => {
    const dir = await tempDir(d, 'gangway-tokens-')
    const port = await echo()
    await writeFile(join(dir, 'a.conf'), `tok-a: 127.0.0.1:${port}\n`)
    await writeFile(join(dir, 'b.conf'), `tok-b: 127.0.0.1:${port}\n`)
    await writeFile(join(dir, '.b.conf.swp'), 'binary junk without separator')
    await mkdir(join(dir, 'sub'))
    const { url } = await startAccessTunnel(d, { tokenFile: dir }, memoryLogger())
    for (const token of ['tok-a', 'tok-b']) {
      const ws = await openWs(d, `${url}?token=${token}`)
      ws.close()
    }
  })

  it('stops the startup with the file name and line number of a bad line', async () => {
    const dir = await tempDir(d, 'gangway-tokens-')
    await writeFile(join(dir, 'tokens'), '\n# c\nt: host:5900\nt2:host:5900\n')
    const config = {
      ...DEFAULTS,
      listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } as const,
      target: undefined,
      tokenFile: join(dir, 'tokens'),
    }
    await expect(createAccessFromConfig(config)).rejects.toThrow(
      `token file ${join(dir, 'tokens')}:4: expected "token: host:port"`,
    )
    await expect(
      createAccessFromConfig({ ...config, tokenFile: join(dir, 'missing') }),
    ).rejects.toThrow(/no such file/)
  })
})

describe('token directory (one file per token)', () => {
  it('resolves a token to the file of the same name and never leaves the directory', async () => {
    const root = await tempDir(d, 'gangway-tokens-')
    const dir = join(root, 'tokens')
    await mkdir(dir)
    await writeFile(join(root, 'outside'), '127.0.0.1:22\n')
    await writeFile(join(dir, 'sess-1'), '10.1.2.3:5900\n')
    await symlink(join(root, 'outside'), join(dir, 'link'))
    const resolver = await tokenDir({ path: dir })
    const req = {} as never
    expect(await resolver.resolve('sess-1', req)).toMatchObject({
      target: { host: '10.1.2.3', port: 5900 },
      trusted: false,
    })
    for (const attack of [
      '../outside',
      '..',
      '.',
      'tokens/../../outside',
      '..%2Foutside',
      `${root}/outside`,
      'link',
      '..\\outside',
      'sess-1\0',
      '',
    ]) {
      expect(await resolver.resolve(attack, req), attack).toBeNull()
    }
  })

  it('refuses its targets (4403) while no target policy allows them', async () => {
    const dir = await tempDir(d, 'gangway-tokens-')
    const port = await echo()
    await writeFile(join(dir, 'sess-2'), `127.0.0.1:${port}\n`)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(d, { tokenDir: dir }, logger)
    expect(await connectAndClose(`${url}?token=sess-2`)).toMatchObject({
      code: 4403,
      reason: 'forbidden',
    })
    expect(await connectAndClose(`${url}?token=..%2Fsess-2`)).toMatchObject({ code: 4401 })
    void closed
  })
})
