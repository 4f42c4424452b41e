/**
 * @module commands/primary
 * The primary process of `--workers N`: forks the workers, serves the admin listener for all of them,
 * forwards SIGHUP and drains them on SIGTERM/SIGINT. It holds no tunnels itself.
 * Knows nothing of tunnels: workers own them.
 */
import type { Config, ListenAddress } from '../config/options.js'
import { GangwayError } from '../errors.js'
import { createLogger, logRejection, resolveNodeId } from '../log.js'
import { createAdminServer, type AdminServer } from '../ops/admin.js'
import { createStateFromConfig } from '../state/from-config.js'
import { startPrimary } from '../ops/cluster.js'
import { combineReports, logReloadReport } from '../ops/reload.js'
import { EXIT_OK } from './command.js'
import { listeningFields } from './daemon-config.js'
import { watchIgnoredSignals, watchStopSignals } from './signals.js'

/**
 * The primary of `--workers N`: forks the workers (which listen), serves the admin listener for all of them,
 * forwards SIGHUP, and on SIGTERM/SIGINT asks every worker to drain and waits for them; a second signal
 * ends them all at once.
 */
export async function runPrimary(
  config: Config,
  count: number,
  adminAt: ListenAddress | undefined,
  adminToken: string | undefined,
): Promise<number> {
  const node = resolveNodeId(config.nodeId)
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    fields: { node, worker: 'primary' },
  })
  // The primary holds no tunnels: its connection serves /readyz and POST /api/revoke.
  const state = await createStateFromConfig(config, { logger, subscribe: false })
  const primary = startPrimary(count, logger)
  const stop = watchStopSignals(logger, () => primary.kill())
  const ignored = watchIgnoredSignals(logger)
  function processOnSighup(): void {
    logger.info('SIGHUP: reloading', { workers: count })
    primary
      .reload()
      .then(function primaryOnReloaded(reports) {
        const report = combineReports(reports)
        if (report.ok && report.logLevel !== undefined) logger.setLevel(report.logLevel)
        logReloadReport(logger, report, { workers: reports.length })
      })
      .catch(logRejection(logger, 'reload failed; the previous configuration stays'))
  }
  process.on('SIGHUP', processOnSighup)
  let admin: AdminServer | undefined
  try {
    let address: ListenAddress
    try {
      address =
        (await Promise.race([primary.listening, stop.signalled.then(() => undefined)])) ??
        config.listen
    } catch (err) {
      throw new GangwayError('ERR_LISTEN', (err as Error).message, { cause: err })
    }
    if (adminAt !== undefined) {
      admin = createAdminServer(adminAt, primary.admin, primary.admin, {
        token: adminToken,
        logger,
        state,
        node,
      })
      await admin.listen()
    }
    logger.info('listening', listeningFields(config, address, admin, count))
    const signal = await stop.signalled
    logger.info('draining', {
      signal,
      workers: count,
      timeoutSeconds: config.drainTimeoutMs / 1000,
    })
    await primary.drain()
    logger.info('stopped')
    return EXIT_OK
  } catch (err) {
    primary.kill()
    throw err
  } finally {
    process.off('SIGHUP', processOnSighup)
    stop.dispose()
    ignored()
    await admin?.close()
    await state?.close()
  }
}
