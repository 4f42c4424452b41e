/**
 * @module commands/signals
 * How the long-running commands (daemon, primary, client listener) meet process signals: the first
 * SIGTERM/SIGINT starts a drain, a second one exits at once; SIGHUP asks for a reload; SIGUSR1 and
 * SIGUSR2 are logged and ignored. The one module besides cli.ts that may call `process.exit`.
 * Knows nothing of what a drain or reload does: it calls the hooks it is given.
 */
import type { Logger } from '../log.js'

/** A second signal during the drain exits at once with 128 + the signal number, as shells report it. */
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const

export type StopSignal = keyof typeof SIGNAL_EXIT_CODES

const STOP_SIGNALS = Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]

/** SIGHUP reloads the config (or, without --config, certificates and token sources); see reload.ts. */
export function watchHangup(logger: Logger, reload: () => void): () => void {
  function processOnHangup(): void {
    logger.info('SIGHUP: reloading')
    reload()
  }
  process.on('SIGHUP', processOnHangup)
  return () => void process.off('SIGHUP', processOnHangup)
}

/**
 * The first SIGTERM/SIGINT resolves `signalled` (the caller drains); a second one exits at once.
 * `dispose` removes the listeners, so an in-process `main()` leaves no trace on `process`.
 */
export function watchStopSignals(
  logger: Logger,
  beforeExit: () => void = () => {},
): { signalled: Promise<StopSignal>; dispose(): void } {
  let received: StopSignal | undefined
  let resolveSignalled: (signal: StopSignal) => void = () => {}
  const signalled = new Promise<StopSignal>((resolve) => {
    resolveSignalled = resolve
  })
  function processOnStopSignal(signal: StopSignal): void {
    if (received === undefined) {
      received = signal
      resolveSignalled(signal)
      return
    }
    logger.warn('second signal: exiting without waiting for tunnels', { signal })
    beforeExit()
    process.exit(SIGNAL_EXIT_CODES[signal])
  }
  for (const signal of STOP_SIGNALS) process.on(signal, processOnStopSignal)
  return {
    signalled,
    dispose() {
      for (const signal of STOP_SIGNALS) process.off(signal, processOnStopSignal)
    },
  }
}

/**
 * SIGUSR1 (Node would open its inspector: code execution for any local user) and SIGUSR2 (Node's default
 * ends the process, no drain, no log line) are logged and otherwise ignored. `bin/gangway.js` already
 * ignores both before anything is loaded; this adds the log line. Debugging is a start-time choice
 * (`node --inspect bin/gangway.js …`), never a signal.
 */
export function watchIgnoredSignals(logger: Logger): () => void {
  function processOnIgnoredSignal(signal: NodeJS.Signals): void {
    logger.warn(`${signal} ignored`, {
      signal,
      hint:
        signal === 'SIGUSR1'
          ? 'the inspector stays closed; to debug, start with node --inspect'
          : 'stop with SIGTERM (drain) or reload with SIGHUP',
    })
  }
  process.on('SIGUSR1', processOnIgnoredSignal)
  process.on('SIGUSR2', processOnIgnoredSignal)
  return function disposeIgnoredSignals() {
    process.off('SIGUSR1', processOnIgnoredSignal)
    process.off('SIGUSR2', processOnIgnoredSignal)
  }
}
