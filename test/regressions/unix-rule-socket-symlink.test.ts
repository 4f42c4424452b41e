/**
 * Issue 13, finding 8: a unix allow rule resolved symlinked directories but not the last path component,
 * so `allowed/link.sock → /elsewhere/s.sock` passed the check and the dial followed the link out of the
 * allowed directory. The whole path is resolved (realpath) before the rule is checked, and the socket
 * dialled is the one checked.
 */
import net from 'node:net'
import { once } from 'node:events'
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createTargetPolicy } from '../../src/targets/policy.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

async function unixEcho(path: string): Promise<{ accepts: () => number }> {
  let accepts = 0
  const server = net.createServer((s) => {
    accepts++
    s.on('error', () => {})
    s.pipe(s)
  })
  server.listen(path)
  await once(server, 'listening')
  d.add(() => new Promise((r) => server.close(r)))
  return { accepts: () => accepts }
}

describe('unix rules check the real socket (issue 13, finding 8)', () => {
  it('a symlink in place of the socket cannot lead out of the allowed directory', async () => {
    const root = await tempDir(d, 'gangway-unix-link-')
    const allowed = join(root, 'allowed')
    const outside = join(root, 'outside')
    await mkdir(allowed)
    await mkdir(outside)
    const secret = await unixEcho(join(outside, 's.sock'))
    const own = await unixEcho(join(allowed, 's.sock'))
    await symlink(join(outside, 's.sock'), join(allowed, 'link.sock'))
    await symlink(join(allowed, 's.sock'), join(allowed, 'inner.sock'))
    await symlink(join(outside, 'none.sock'), join(allowed, 'dangling.sock'))

    const policy = createTargetPolicy({ allow: [`unix:${allowed}`], deny: [] })
    const check = (path: string) =>
      policy.check({ kind: 'unix', path }, { timeoutMs: 1000 }).then(
        (c) => c.target,
        (e: { closeCode: number }) => e.closeCode,
      )
    expect(await check(join(allowed, 'link.sock'))).toBe(4403)
    // A link that stays inside is dialled at its real path; nothing there is nothing to dial.
    expect(await check(join(allowed, 'inner.sock'))).toEqual({
      kind: 'unix',
      path: join(allowed, 's.sock'),
    })
    expect(await check(join(allowed, 'dangling.sock'))).toBe(4503)
    expect(await check(join(allowed, 'missing.sock'))).toBe(4503)
    expect(await check(join(outside, 'missing.sock'))).toBe(4403)

    const { url } = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`unix:${allowed}`], maxAuthFailures: 0 },
      memoryLogger(),
    )
    const refused = await connectAndClose(
      `${url}?address=${encodeURIComponent(`unix:${join(allowed, 'link.sock')}`)}`,
    )
    expect(refused.code).toBe(4403)
    expect(secret.accepts()).toBe(0)
    const ws = await openWs(
      d,
      `${url}?address=${encodeURIComponent(`unix:${join(allowed, 'inner.sock')}`)}`,
    )
    ws.close()
    await once(ws, 'close')
    expect(own.accepts()).toBe(1)
  })
})
