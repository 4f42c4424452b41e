/**
 * @module commands/daemon
 * The default command: a daemon that listens, logs its startup line, reloads on SIGHUP (ops/reload.ts) and
 * drains on SIGTERM/SIGINT. With `--workers N` the first process becomes the primary (commands/primary.ts) and
 * its forks run this same code as workers (ops/cluster.ts).
 * Wiring only: every behaviour lives in the layers below.
 */
import cluster from 'node:cluster'
import { resolveConfig, type Config } from '../config/options.js'
import { ConfigError } from '../errors.js'
import { createAccessFromConfig, createAccessState } from '../auth/from-config.js'
import { createLogger, logRejection, resolveNodeId, type Logger } from '../log.js'
import { createTunnelServer, type TunnelServer } from '../gateway/server.js'
import { loadTargetTls } from '../targets/target-tls.js'
import { createPasswordStore } from '../targets/login/passwords.js'
import { createAdminServer, type AdminServer } from '../ops/admin.js'
import { createMetrics } from '../ops/metrics.js'
import { attachState, createStateFromConfig } from '../state/from-config.js'
import { workerContext, workerCount } from '../ops/cluster.js'
import { createReloader, logReloadReport } from '../ops/reload.js'
import { EXIT_OK, type Args, type CommandSpec } from './command.js'
import {
  adminAddress,
  checkTlsOptions,
  checkWebRoot,
  configInput,
  daemonOptions,
  listeningFields,
  positional,
  readAdminToken,
} from './daemon-config.js'
import { watchIdle } from './idle-exit.js'
import { runPrimary } from './primary.js'
import { watchHangup, watchIgnoredSignals, watchStopSignals } from './signals.js'

export const serveCommand: CommandSpec = {
  command: '$0 [LISTEN] [TARGET]',
  describe: 'Relay WebSocket connections on LISTEN to the TCP (or unix socket) TARGET.',
  builder: (y) => daemonOptions(positional(positional(y, 'LISTEN', 'listen'), 'TARGET', 'target')),
  run: runServe,
}

async function runServe(args: Args): Promise<number> {
  const input = await configInput(args, args['LISTEN'], args['TARGET'])
  const config = resolveConfig(input)
  await checkWebRoot(config.webRoot, input)
  // SIGHUP re-reads the file, with the same flags and positionals on top (see reload.ts).
  const loadConfig =
    args['config'] === undefined
      ? undefined
      : async () => resolveConfig(await configInput(args, args['LISTEN'], args['TARGET']))
  return runDaemon(config, { loadConfig })
}

export interface DaemonHooks {
  afterListen?(server: TunnelServer, logger: Logger): void
  /** Reads the config again for a SIGHUP reload; without it SIGHUP re-reads token sources and TLS files. */
  loadConfig?: () => Promise<Config>
}

/** Listens, logs the startup line, then waits for SIGTERM/SIGINT and drains. SIGHUP reloads (ops/reload.ts). */
export async function runDaemon(config: Config, hooks: DaemonHooks): Promise<number> {
  checkTlsOptions(config)
  // Read (and validate) the files of tls:// targets before anything is opened: a bad one is a usage error.
  const targetTls = loadTargetTls(config)
  // The same for the password files of routes with a login (the server reads and watches its own store).
  createPasswordStore(config.routes, { watch: false }).close()
  const adminAt = adminAddress(config.admin)
  const adminToken = await readAdminToken(config, adminAt !== undefined)
  const count = workerCount(config)
  if (count > 1 && config.idleExitMs > 0) {
    throw new ConfigError(
      '--idle-exit (websockify --idle-timeout) needs a single process: drop --workers',
    )
  }
  if (count > 1 && cluster.isPrimary) return runPrimary(config, count, adminAt, adminToken)
  const worker = workerContext()
  const node = resolveNodeId(config.nodeId)
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    fields: worker === undefined ? { node } : { node, worker: worker.index },
  })
  // Workers record metrics for the primary's admin listener to aggregate.
  const metrics = adminAt === undefined ? undefined : createMetrics({ worker: worker?.index })
  // Shared by several nodes through Redis (--state-redis), if configured.
  const shared = await createStateFromConfig(config, {
    logger,
    registry: metrics?.registry,
    subscribe: true,
  })
  // What every gate inherits from the one before it (a SIGHUP reload builds a new gate).
  const accessState = createAccessState()
  const access = await createAccessFromConfig(config, { logger, state: accessState, shared }).catch(
    async (err: unknown) => {
      await shared?.close()
      throw err
    },
  )
  const idSpace = worker === undefined ? undefined : { index: worker.index, count: worker.count }
  const server = createTunnelServer(config, {
    logger,
    metrics,
    idSpace,
    access,
    targetTls,
    isRevoked:
      shared === undefined ? undefined : (print, since) => shared.heardRevoked(print, since),
  })
  if (shared !== undefined) attachState(shared, server)
  const reloader = createReloader({
    config,
    load: hooks.loadConfig,
    server,
    access,
    state: accessState,
    shared,
    logger,
    setLogLevel: (level) => logger.setLevel(level),
    configReloaded: (ok) => metrics?.configReloaded(ok),
  })
  let admin: AdminServer | undefined
  for (const warning of config.warnings ?? []) logger.warn(warning)
  const stop = watchStopSignals(logger)
  const ignored = watchIgnoredSignals(logger)
  const idleWatch =
    config.idleExitMs > 0
      ? watchIdle(config.idleExitMs, () => server.stats().tunnels + server.stats().dialing)
      : undefined
  // Workers reload when the primary forwards its SIGHUP, and the primary logs the outcome.
  const hangup =
    worker === undefined
      ? watchHangup(logger, function daemonOnHangup() {
          reloader
            .reload()
            .then((r) => logReloadReport(logger, r))
            .catch(logRejection(logger, 'reload failed; the previous configuration stays'))
        })
      : undefined
  try {
    await server.listen()
    if (worker !== undefined) {
      worker.ready(server, metrics, () => reloader.reload(), shared)
    } else {
      if (adminAt !== undefined && metrics !== undefined) {
        admin = createAdminServer(adminAt, server, metrics, {
          token: adminToken,
          logger,
          state: shared,
          node,
        })
        await admin.listen()
      }
      logger.info('listening', listeningFields(config, server.address(), admin))
      hooks.afterListen?.(server, logger)
    }
    // A worker drains when the primary asks (over IPC) or on its own signal (a terminal's Ctrl-C).
    const idle = idleWatch?.idle.then(function daemonOnIdle() {
      logger.info('idle: no tunnel open; exiting (--idle-exit)', {
        idleSeconds: config.idleExitMs / 1000,
      })
      return 'idle' as const
    })
    const signal = await Promise.race([
      stop.signalled,
      ...(worker === undefined ? [] : [worker.drainRequested.then(() => 'primary' as const)]),
      ...(idle === undefined ? [] : [idle]),
    ])
    // close() stops accepting before it returns, so "draining" is only logged once new connections fail.
    // The admin listener stays up meanwhile: /readyz answers 503 so load balancers move away.
    const { drainTimeoutMs } = reloader.current()
    const closed = server.close({ drainTimeoutMs })
    logger.info('draining', {
      signal,
      tunnels: server.stats().tunnels,
      timeoutSeconds: drainTimeoutMs / 1000,
    })
    await closed
    logger.info('stopped')
    return EXIT_OK
  } finally {
    worker?.dispose()
    idleWatch?.dispose()
    stop.dispose()
    ignored()
    hangup?.()
    await admin?.close()
    await server.close({ drainTimeoutMs: 0 })
    await reloader.close()
    await shared?.close()
  }
}
