/**
 * Routes with a `login` for tests: a password file in a temp dir, the route parsed as the config file's
 * would be, a daemon with metrics, and a scan of everything a daemon exposes (log lines, metrics, admin
 * views, recordings) for a password.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAccessFromConfig } from '../../src/auth/from-config.js'
import type { Config } from '../../src/config/options.js'
import { parseRoutes } from '../../src/config/routes.js'
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import { createMetrics, type TunnelMetrics } from '../../src/ops/metrics.js'
import { daemonConfig } from './access.js'
import type { Disposer } from './disposer.js'
import { tempDir } from './tmp.js'
import { memoryLogger, type MemoryLogger } from './tunnel.js'

export const ROUTE_TOKEN = 'login-route-token-0123456789'

export interface LoginDaemon {
  server: TunnelServer
  logger: MemoryLogger
  metrics: TunnelMetrics
  dir: string
  passwordFile: string
  /** ws URL of the route, with its token in the query. */
  url: string
}

/**
 * A daemon with one route `name` → `target` opened by `ROUTE_TOKEN`, whose `login` is `login` plus a
 * password file holding `password` (followed by a newline, as editors write it).
 */
export async function startLoginDaemon(
  d: Disposer,
  target: string,
  login: Record<string, unknown>,
  password: string,
  overrides: Partial<Config> = {},
  route: Record<string, unknown> = {},
): Promise<LoginDaemon> {
  const dir = await tempDir(d, 'gangway-login-')
  const passwordFile = join(dir, 'target.pass')
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 })
  const routes = parseRoutes(
    { svc: { target, tokens: [ROUTE_TOKEN], login: { ...login, passwordFile }, ...route } },
    'routes',
  )
  const logger = memoryLogger()
  const metrics = createMetrics({ defaultMetrics: false })
  const config = daemonConfig({ routes, ...overrides })
  const access = await createAccessFromConfig(config, { logger })
  d.add(() => access?.close())
  const server = createTunnelServer(config, { logger, access, metrics })
  await server.listen()
  d.add(() => server.close({ drainTimeoutMs: 0 }))
  const port = (server.address() as { port: number }).port
  return {
    server,
    logger,
    metrics,
    dir,
    passwordFile,
    url: `ws://127.0.0.1:${port}/?token=${ROUTE_TOKEN}`,
  }
}

/** Everything the daemon shows of itself, as text: log lines, metrics, admin views, recordings. */
export async function daemonSurface(daemon: LoginDaemon, recordDir?: string): Promise<string> {
  const parts = [
    JSON.stringify(daemon.logger.lines),
    await daemon.metrics.registry.metrics(),
    JSON.stringify(daemon.server.list()),
    JSON.stringify(daemon.server.totals()),
    JSON.stringify(daemon.server.stats()),
  ]
  if (recordDir !== undefined) {
    for (const name of await readdir(recordDir)) {
      const text = await readFile(join(recordDir, name), 'utf8')
      parts.push(text)
      // Recorded payload is base64: decode it so a password inside would show.
      for (const line of text.split('\n')) {
        const data = /"data":"([^"]*)"/.exec(line)?.[1]
        if (data !== undefined) parts.push(Buffer.from(data, 'base64').toString('latin1'))
      }
    }
  }
  return parts.join('\n')
}

/** The value of `gangway_logins_total{protocol,result}`. */
export async function loginCount(
  metrics: TunnelMetrics,
  protocol: string,
  result: string,
): Promise<number> {
  const metric = await metrics.registry.getSingleMetric('gangway_logins_total')?.get()
  const value = metric?.values.find(
    (v) => v.labels['protocol'] === protocol && v.labels['result'] === result,
  )
  return value?.value ?? 0
}
