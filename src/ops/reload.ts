/**
 * @module ops/reload
 * SIGHUP: re-read the `--config` file (the command-line flags still on top), validate all of it, build a new
 * access gate (routes, policy, origins, every token source), load the files of `tls://` targets and check
 * the listener's TLS files; only when all of that
 * succeeded, swap the new config and gate in at once. New upgrades then use them; live tunnels keep running
 * on what they started with. The old gate's resolvers (file watchers, Redis connections) are closed once
 * the admissions still running on it have finished. A config that fails leaves everything as it was.
 * Options that cannot change in a running process (`RESTART_ONLY`) keep their start-up values and are
 * reported. Without `--config`, a reload re-reads the token sources and the certificate, as it always did.
 * Never touches a live tunnel.
 */
import { isDeepStrictEqual } from 'node:util'
import { formatAddress } from '../config/address.js'
import type { Access, Admission, Refusal } from '../auth/access.js'
import { createAccessFromConfig, type AccessState } from '../auth/from-config.js'
import { OPTIONS, type Config } from '../config/options.js'
import type { Logger } from '../log.js'
import { prepareRecording } from '../relay/record.js'
import { clientResolverFor, type TunnelServer } from '../gateway/server.js'
import type { SharedState } from '../state/redis-state.js'
import { loadTargetTls, type TargetTls } from '../targets/target-tls.js'
import { loadTlsOptions, tlsSettings } from '../gateway/tls.js'
import { createPasswordStore, type PasswordStore } from '../targets/login/passwords.js'

/**
 * Options a running daemon cannot change: the sockets it listens on, its processes, TLS on the listener,
 * how the HTTP server parses requests, and the log format. Every other option is reloaded.
 */
export const RESTART_ONLY = [
  'listen',
  'listenMode',
  'workers',
  'idleExitMs',
  'admin',
  'adminTokenFile',
  'tlsCert',
  'tlsKey',
  'tlsMinVersion',
  'tlsCiphers',
  'proxyProtocol',
  'webRoot',
  'maxHeaderBytes',
  'maxHandshakes',
  'handshakeTimeoutMs',
  'logFormat',
  'nodeId',
  'stateRedis',
  'statePrefix',
] as const satisfies ReadonlyArray<keyof Config>

/** The outcome of one reload, for the one log line (or, with `--workers`, for the primary to log). */
export interface ReloadReport {
  readonly ok: boolean
  /** Why it failed: the file, key and line when known. Never holds a token. */
  readonly error?: string
  /** Config keys whose new values are now in force. */
  readonly changed: readonly string[]
  /** Changed options that need a restart, with the value kept meanwhile. */
  readonly restartNeeded: ReadonlyArray<{ option: string; keeping: string }>
  /** The log level in force afterwards (the `--workers` primary follows its workers). */
  readonly logLevel?: Config['logLevel']
}

export interface ReloaderOptions {
  /** The config the daemon started with. */
  readonly config: Config
  /** Reads and validates the config again (file + flags); undefined without `--config`. */
  readonly load: (() => Promise<Config>) | undefined
  readonly server: TunnelServer
  /** The gate built at start-up (undefined: the daemon runs open). */
  readonly access: Access | undefined
  /** The state the start-up gate was built with; every new gate inherits it. */
  readonly state: AccessState
  /** State shared by several nodes (`--state-redis`); its connection is kept across reloads. */
  readonly shared?: SharedState | undefined
  readonly logger: Logger
  /** Applies a reloaded `logLevel`. */
  setLogLevel?(level: Config['logLevel']): void
  /** Counts reloads by result. */
  configReloaded?(ok: boolean): void
}

export interface Reloader {
  /** One reload; concurrent calls run one after the other. Never rejects. */
  reload(): Promise<ReloadReport>
  /** The config in force now. */
  current(): Config
  /** Closes the gate in force and waits for retired gates to close (daemon shutdown). */
  close(): Promise<void>
}

export function createReloader(options: ReloaderOptions): Reloader {
  const { server, logger, state } = options
  let config = options.config
  let gate = options.access === undefined ? undefined : trackAdmissions(options.access)
  const retiring = new Set<Promise<void>>()
  let queue: Promise<unknown> = Promise.resolve()
  server.reconfigure(config, gate)

  async function reloadOnce(): Promise<ReloadReport> {
    const report = options.load === undefined ? await reloadSources() : await reloadConfig()
    options.configReloaded?.(report.ok)
    return report
  }

  /** Without `--config`: re-read token files and certificates in place, as SIGHUP always did. */
  async function reloadSources(): Promise<ReloadReport> {
    await server.reloadCertificates() // logs its own outcome
    server.reloadPasswords() // logs each file that fails (and keeps its password)
    try {
      await gate?.reload()
      return { ok: true, changed: [], restartNeeded: [] }
    } catch (err) {
      return failed(err)
    }
  }

  async function reloadConfig(): Promise<ReloadReport> {
    let next: Config
    let nextGate: TrackedAccess | undefined
    let nextTargetTls: TargetTls
    let nextPasswords: PasswordStore | undefined
    const restartNeeded: Array<{ option: string; keeping: string }> = []
    try {
      const loaded = await options.load!()
      const pinned: Record<string, unknown> = { ...loaded }
      for (const field of RESTART_ONLY) {
        if (isDeepStrictEqual(loaded[field], config[field])) continue
        restartNeeded.push({ option: keyOf(field), keeping: describe(field, config[field]) })
        pinned[field] = config[field]
      }
      next = Object.freeze(pinned) as unknown as Config
      clientResolverFor(next) // throws on a bad --trust-proxy list or header, before anything changes
      if (next.record !== undefined && next.record !== config.record) {
        await prepareRecording(next.record).catch((err: Error) => {
          throw new Error(`record: ${err.message}`)
        })
      }
      const tls = tlsSettings(next)
      if (tls !== undefined) await loadTlsOptions(tls)
      nextTargetTls = loadTargetTls(next)
      nextPasswords = createPasswordStore(next.routes, { logger })
      const built = await createAccessFromConfig(next, { logger, state, shared: options.shared })
      nextGate = built === undefined ? undefined : trackAdmissions(built)
    } catch (err) {
      nextPasswords?.close()
      return failed(err)
    }
    // Nothing below can fail: the swap is all or nothing.
    const changed = OPTIONS.filter(
      (spec) => !isDeepStrictEqual(next[spec.field], config[spec.field]),
    )
      .map((spec) => spec.key)
      .concat((['target', 'routes'] as const).filter((k) => !isDeepStrictEqual(next[k], config[k])))
    const previousGate = gate
    config = next
    gate = nextGate
    server.reconfigure(next, nextGate, nextTargetTls, nextPasswords)
    options.setLogLevel?.(next.logLevel)
    if (previousGate !== undefined) retire(previousGate)
    if (next.tlsCert !== undefined) await server.reloadCertificates()
    return { ok: true, changed, restartNeeded, logLevel: next.logLevel }
  }

  /** Closes a replaced gate once no admission runs on it any more (tunnels it admitted live on). */
  function retire(old: TrackedAccess): void {
    const done = old
      .idle()
      .then(() => old.close())
      .catch(function retireOnError(err: unknown) {
        logger.warn('closing the previous token sources failed', { error: messageOf(err) })
      })
      .finally(() => retiring.delete(done))
    retiring.add(done)
  }

  return {
    reload() {
      const run = queue.then(reloadOnce)
      queue = run.catch(() => undefined)
      return run.catch(failed)
    },
    current: () => config,
    async close() {
      await queue
      await Promise.all([...retiring])
      await gate?.close()
    },
  }
}

/** Logs a report: one line for the outcome, one warning per option that needs a restart. */
export function logReloadReport(
  logger: Logger,
  report: ReloadReport,
  fields: Record<string, unknown> = {},
): void {
  if (!report.ok) {
    logger.error('config reload failed; keeping the previous config', {
      ...fields,
      error: report.error,
    })
    return
  }
  for (const { option, keeping } of report.restartNeeded) {
    logger.warn('config option changed; restart to apply', { option, keeping })
  }
  logger.info('config reloaded', { ...fields, changed: report.changed })
}

/** One report for several workers: the first failure if any failed, else the first report. */
export function combineReports(reports: readonly ReloadReport[]): ReloadReport {
  const failure = reports.find((r) => !r.ok)
  if (failure !== undefined) return failure
  return reports[0] ?? { ok: false, error: 'no worker answered', changed: [], restartNeeded: [] }
}

function failed(err: unknown): ReloadReport {
  return { ok: false, error: messageOf(err), changed: [], restartNeeded: [] }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

type TrackedAccess = Access & { idle(): Promise<void> }

/** Counts admissions in progress, so a replaced gate is closed only after the last one answered. */
function trackAdmissions(access: Access): TrackedAccess {
  let running = 0
  let waiters: Array<() => void> = []
  function settled(): void {
    running--
    if (running > 0) return
    const wake = waiters
    waiters = []
    for (const resolve of wake) resolve()
  }
  return {
    admit(req, clientIp): Promise<Admission | Refusal> {
      running++
      const answer = access.admit(req, clientIp)
      // The caller handles `answer`'s rejection; this branch only counts it (settled never throws).
      answer.then(settled, settled).catch(() => undefined)
      return answer
    },
    reload: () => access.reload(),
    close: () => access.close(),
    idle() {
      if (running === 0) return Promise.resolve()
      return new Promise((resolve) => waiters.push(resolve))
    },
  }
}

/** The config-file key of a `Config` field (`handshakeTimeoutMs` → `handshakeTimeout`). */
function keyOf(field: (typeof RESTART_ONLY)[number]): string {
  return OPTIONS.find((spec) => spec.field === field)?.key ?? field
}

/** A kept value as an operator would write it. */
function describe(field: (typeof RESTART_ONLY)[number], value: unknown): string {
  if (value === undefined) return 'none'
  if (field === 'listen') return formatAddress(value as Config['listen'])
  if (field === 'listenMode') return (value as number).toString(8)
  if (field.endsWith('Ms')) return String((value as number) / 1000)
  // A URL's credentials (`stateRedis: redis://:password@host`) stay out of the log line.
  if (typeof value === 'string') return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@')
  return JSON.stringify(value)
}
