import { afterEach, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { makeCa, makeLeaf } from '../helpers/certs.js'
import { startTlsTarget } from '../helpers/tls-target.js'
import { openWs } from '../helpers/ws.js'
import { portOf, runGangway, spawnGangway, type LogRecord } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

describe('gangway with tls:// targets', () => {
  it('exits 2 naming the file when --target-ca cannot be read', async () => {
    const { code, stderr, stdout } = await runGangway(d, [
      '--target-ca',
      '/nonexistent/gangway-ca.pem',
      '127.0.0.1:0',
      'tls://127.0.0.1:5901',
    ])
    expect(code).toBe(2)
    expect(stderr).toEqual([
      'gangway: --target-ca /nonexistent/gangway-ca.pem: cannot read it (ENOENT)',
    ])
    expect(stdout).toEqual([])
  })

  it('exits 2 naming the route when its CA file is not PEM', async () => {
    const dir = await tempDir(d, 'gangway-cli-tls-')
    await writeFile(join(dir, 'ca.pem'), 'junk\n')
    await writeFile(
      join(dir, 'gangway.yaml'),
      'listen: 127.0.0.1:0\nroutes:\n  vnc:\n    target: tls://127.0.0.1:5901\n    tokens: [a-long-route-token]\n    tls: { ca: ca.pem }\n',
    )
    const { code, stderr } = await runGangway(d, ['--config', 'gangway.yaml'], { cwd: dir })
    expect(code).toBe(2)
    expect(stderr).toEqual([
      `gangway: route "vnc" tls.ca ${join(dir, 'ca.pem')}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`,
    ])
  })

  it('relays to a CA-verified target given as tls://host:port, and logs it so', async () => {
    const dir = await tempDir(d, 'gangway-cli-tls-')
    const ca = await makeCa(dir)
    const leaf = await makeLeaf(dir, ca, 'target', 'server')
    const target = await startTlsTarget({ cert: leaf.pem, key: await readFile(leaf.key, 'utf8') })
    d.add(() => target.close())
    const proc = spawnGangway(d, [
      '--log-format',
      'json',
      '--target-ca',
      ca.cert,
      '127.0.0.1:0',
      `tls://127.0.0.1:${target.port}`,
    ])
    const listening = await proc.waitForLog((r: LogRecord) => r.msg === 'listening')
    expect(listening['target']).toBe(`tls://127.0.0.1:${target.port}`)
    const ws = await openWs(d, `ws://127.0.0.1:${portOf(listening['listen'])}/`)
    ws.send(Buffer.from('through tls'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('through tls')
  })
})
