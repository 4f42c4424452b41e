import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { watch } from 'node:fs'
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDisposer } from '../helpers/disposer.js'
import { makeCert } from '../helpers/certs.js'
import { freePort, startEchoServer } from '../helpers/tcp.js'
import { memoryLogger, startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SNIPPET = new URL('../../deploy/nginx-gangway.conf', import.meta.url)

/**
 * Runs Debian's nginx in the foreground with deploy/nginx-gangway.conf, adjusted only where a test must:
 * loopback ports, a test certificate, the test daemon as upstream, temp paths in a temp dir.
 */
async function startNginx(upstreamPort: number) {
  const dir = await mkdtemp(join(tmpdir(), 'gangway-nginx-'))
  d.add(() => rm(dir, { recursive: true, force: true }))
  await mkdir(join(dir, 'tmp'))
  const cert = await makeCert(dir, 'nginx')
  const port = await freePort()
  const snippet = (await readFile(SNIPPET, 'utf8'))
    .replace('server 127.0.0.1:6080;', `server 127.0.0.1:${upstreamPort};`)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace('listen [::]:443 ssl;', '')
    .replace(/ssl_certificate .*;/, `ssl_certificate ${cert.cert};`)
    .replace(/ssl_certificate_key .*;/, `ssl_certificate_key ${cert.key};`)
  expect(snippet).toContain(`listen 127.0.0.1:${port} ssl;`)
  await writeFile(join(dir, 'gangway.conf'), snippet)
  const tmp = join(dir, 'tmp')
  await writeFile(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  include ${join(dir, 'gangway.conf')};
}
`,
  )
  // nginx opens its listening sockets before it writes its pid file: the file appearing means "ready".
  const pidFile = join(dir, 'nginx.pid')
  const watcher = watch(dir)
  d.add(() => watcher.close())
  const nginx = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-e', 'stderr'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  nginx.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const ready = new Promise<void>((resolve, reject) => {
    const check = (): void => void access(pidFile).then(resolve, () => {})
    watcher.on('change', check)
    void check()
    nginx.once('exit', () => reject(new Error(`nginx exited: ${stderr}`))) // ignored once ready
  })
  d.add(async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGQUIT')
      await once(nginx, 'exit')
    }
  })
  await ready
  watcher.close()
  return { port, ca: cert.pem, stderr: () => stderr, process: nginx }
}

describe('deploy/nginx-gangway.conf', () => {
  it('proxies WebSocket tunnels through a real nginx, and Gangway logs the browser from X-Forwarded-For', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const logger = memoryLogger()
    const server = await startTunnel(d, tcpTarget(echo.port), { trustProxy: '127.0.0.1' }, logger)
    const nginx = await startNginx((server.address() as { port: number }).port)

    // nginx has no "ready" line: the first connection attempt that succeeds is the signal (bounded).
    let ws
    for (let attempt = 0; attempt < 100 && ws === undefined; attempt++) {
      if (nginx.process.exitCode !== null) throw new Error(`nginx exited: ${nginx.stderr()}`)
      ws = await openWs(d, `wss://127.0.0.1:${nginx.port}/gangway/`, { ca: nginx.ca }).catch(
        () => undefined,
      )
      if (ws === undefined) await once(nginx.process.stderr, 'readable').catch(() => undefined)
    }
    if (ws === undefined) throw new Error(`nginx did not come up: ${nginx.stderr()}`)
    ws.send(Buffer.from('via nginx'))
    const [m] = (await once(ws, 'message')) as [Buffer]
    expect(m.toString()).toBe('via nginx')
    // From X-Forwarded-For: the browser's address, without nginx's upstream port.
    expect((await logger.waitFor('tunnel open')).fields['client']).toBe('127.0.0.1')
    expect(nginx.stderr()).not.toMatch(/\[(emerg|alert|crit)\]/)
  })
})
