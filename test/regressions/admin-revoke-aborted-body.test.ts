/**
 * Issue 13, finding 7: a client that sent the headers of `POST /api/revoke` (with the admin token) and
 * then went away in the middle of its body crashed the daemon: `readJson` threw `aborted` out of the
 * request listener's `void route()`, an unhandled rejection. The request must be dropped on its own, the
 * daemon must stay up and answer the next request.
 */
import net from 'node:net'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { tempDir } from '../helpers/tmp.js'
import { portOf, spawnGangway } from '../cli/gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

const ADMIN_TOKEN = 'admin-token-for-the-aborted-body-test'

describe('POST /api/revoke with an aborted body (issue 13, finding 7)', () => {
  it('drops that request; the daemon stays up and answers the next one', async () => {
    const redis = await startRedisServer(d)
    const dir = await tempDir(d)
    await writeFile(join(dir, 'tokens'), 'a-token-for-the-aborted-body-test: 127.0.0.1:9\n')
    await writeFile(join(dir, 'admin-token'), ADMIN_TOKEN + '\n')
    const proc = spawnGangway(d, [
      `--token-file=${join(dir, 'tokens')}`,
      `--state-redis=${redis.url}`,
      `--admin-token-file=${join(dir, 'admin-token')}`,
      '--admin=0',
      '--log-format=json',
      '127.0.0.1:0',
    ])
    const listening = await proc.waitForLog((r) => r.msg === 'listening')
    const adminPort = portOf(listening['admin'])

    for (let i = 0; i < 3; i++) {
      // Three times: one aborted body was enough to end the process.
      const socket = net.connect(adminPort, '127.0.0.1')
      socket.on('error', () => {})
      await once(socket, 'connect')
      socket.write(
        'POST /api/revoke HTTP/1.1\r\nHost: x\r\n' +
          `Authorization: Bearer ${ADMIN_TOKEN}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"fingerprint":',
      )
      // Leave in the middle of the body.
      socket.destroy()
      await once(socket, 'close')
    }
    const failed = await proc.waitForLog((r) => r.msg === 'admin request failed')
    expect(failed['error']).toMatch(/aborted/)
    const health = await fetch(`http://127.0.0.1:${adminPort}/healthz`)
    expect(health.status).toBe(200)
    expect(proc.child.exitCode).toBeNull()
  })
})
