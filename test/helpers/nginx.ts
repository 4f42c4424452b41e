/**
 * Debian's nginx in the foreground with deploy/nginx-gangway.conf, adjusted only where a test must:
 * loopback ports, a test certificate, the test daemons as upstream servers, temp paths in a temp dir.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { watch } from 'node:fs'
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import type WebSocket from 'ws'
import { makeCert } from './certs.js'
import type { Disposer } from './disposer.js'
import { freePort } from './tcp.js'
import { tempDir } from './tmp.js'
import { openWs } from './ws.js'

const SNIPPET = new URL('../../deploy/nginx-gangway.conf', import.meta.url)

export interface Nginx {
  port: number
  /** The CA of nginx's test certificate (connect with `{ ca }`). */
  ca: string
  stderr(): string
  process: ChildProcess
  /**
   * Where the log files are written: the snippet's own (`/var/log/nginx/…` in deploy/) and `access.log` /
   * `error.log`, set as Debian's nginx.conf sets them, for whatever the snippet does not log itself.
   */
  logDir: string
  /** `wss://127.0.0.1:<port>/gangway/` plus `path`. */
  url(path?: string): string
}

/**
 * Starts nginx with one `server` line per upstream (a port on 127.0.0.1, or a unix socket path); resolves
 * once it listens. The snippet's log files are moved into a temp dir (`logDir`).
 */
export async function startNginx(
  disposer: Disposer,
  upstreams: Array<number | string>,
): Promise<Nginx> {
  const dir = await tempDir(disposer, 'gangway-nginx-')
  await mkdir(join(dir, 'tmp'))
  const cert = await makeCert(dir, 'nginx')
  const port = await freePort()
  const servers = upstreams
    .map((p) => (typeof p === 'number' ? `server 127.0.0.1:${p};` : `server unix:${p};`))
    .join('\n    ')
  const snippet = (await readFile(SNIPPET, 'utf8'))
    .replace('server 127.0.0.1:6080;', servers)
    .replace('listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`)
    .replace('listen [::]:443 ssl;', '')
    .replace(/ssl_certificate .*;/, `ssl_certificate ${cert.cert};`)
    .replace(/ssl_certificate_key .*;/, `ssl_certificate_key ${cert.key};`)
    .replaceAll('/var/log/nginx/', `${dir}/`)
  expect(snippet).toContain(`listen 127.0.0.1:${port} ssl;`)
  expect(snippet).toContain(servers)
  await writeFile(join(dir, 'gangway.conf'), snippet)
  const tmp = join(dir, 'tmp')
  await writeFile(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
error_log ${join(dir, 'error.log')};
events { worker_connections 64; }
http {
  access_log ${join(dir, 'access.log')};
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  include ${join(dir, 'gangway.conf')};
}
`,
  )
  // nginx opens its listening sockets before it writes its pid file: the file appearing means "ready".
  const pidFile = join(dir, 'nginx.pid')
  const watcher = watch(dir)
  disposer.add(() => watcher.close())
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
  disposer.add(async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGQUIT')
      await once(nginx, 'exit')
    }
  })
  await ready
  watcher.close()
  return {
    port,
    ca: cert.pem,
    stderr: () => stderr,
    process: nginx,
    logDir: dir,
    url: (path = '') => `wss://127.0.0.1:${port}/gangway/${path}`,
  }
}

/** The first WebSocket through nginx: retried (bounded) until nginx accepts, which has no "ready" line. */
export async function firstWsThrough(
  disposer: Disposer,
  nginx: Nginx,
  path = '',
): Promise<WebSocket> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (nginx.process.exitCode !== null) throw new Error(`nginx exited: ${nginx.stderr()}`)
    const ws = await openWs(disposer, nginx.url(path), { ca: nginx.ca }).catch(() => undefined)
    if (ws !== undefined) return ws
    await once(nginx.process.stderr!, 'readable').catch(() => undefined)
  }
  throw new Error(`nginx did not come up: ${nginx.stderr()}`)
}
