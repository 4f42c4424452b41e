/**
 * A real XMPP server: Debian's Prosody 0.12 (installed by scripts/test-env.sh), spawned in the foreground on
 * a free loopback port with its own config and data directory (removed on close), plaintext c2s (no
 * certificates, so no STARTTLS), SCRAM logins, and one registered user.
 */
import { spawn, execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './tcp.js'

export const PROSODY_PATH = '/usr/bin/prosody'

export interface XmppServer {
  port: number
  domain: string
  username: string
  password: string
  close(): Promise<void>
}

export async function startProsody(): Promise<XmppServer> {
  const dir = await mkdtemp(join(tmpdir(), 'gangway-prosody-'))
  const port = await freePort()
  const domain = 'localhost'
  const [username, password] = ['alice', 'wonderland-42']
  await mkdir(join(dir, 'data'))
  await mkdir(join(dir, 'certs'))
  const config = join(dir, 'prosody.cfg.lua')
  await writeFile(
    config,
    [
      'daemonize = false',
      'run_as_root = true',
      `pidfile = "${dir}/prosody.pid"`,
      `data_path = "${dir}/data"`,
      `certificates = "${dir}/certs"`,
      'interfaces = { "127.0.0.1" }',
      `c2s_ports = { ${port} }`,
      'c2s_direct_tls_ports = { }',
      'legacy_ssl_ports = { }',
      'c2s_require_encryption = false',
      'authentication = "internal_hashed"',
      'modules_enabled = { "roster"; "saslauth"; "disco"; "ping" }',
      'modules_disabled = { "s2s" }',
      'log = { { levels = { min = "info" }, to = "console" } }',
      `VirtualHost "${domain}"`,
      '',
    ].join('\n'),
  )
  await promisify(execFile)('prosodyctl', [
    '--config',
    config,
    'register',
    username,
    domain,
    password,
  ])
  const child = spawn(PROSODY_PATH, ['-F', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes(`Activated service 'c2s' on [127.0.0.1]:${port}`)) resolve()
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`prosody exited (${code}): ${log}`)))
  })
  return {
    port,
    domain,
    username,
    password,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}
