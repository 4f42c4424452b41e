/**
 * @module commands/idle-exit
 * websockify's `--idle-timeout` (`idleExit`): the daemon ends once no tunnel has been open for that long,
 * counted from startup. Watches the server's load and tunnel closes; knows nothing of signals or exit codes.
 */
import { closeChannel } from '../events.js'

/** How often the load is looked at: often enough for short timeouts, at most once a second. */
const MAX_TICK_MS = 1000
const MIN_TICK_MS = 25

export interface IdleWatch {
  /** Resolves once the server has had no tunnel (open or being dialled) for `idleMs`. */
  readonly idle: Promise<void>
  dispose(): void
}

/** Watches `load()` (tunnels open or dialling); a tunnel that opens and closes between looks still counts. */
export function watchIdle(idleMs: number, load: () => number): IdleWatch {
  let lastBusy = Date.now()
  let timer: NodeJS.Timeout | undefined
  let done = false
  function closeOnTunnelClosed(): void {
    lastBusy = Date.now()
  }
  closeChannel.subscribe(closeOnTunnelClosed)
  const idle = new Promise<void>((resolve) => {
    const tick = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(idleMs / 4)))
    timer = setInterval(function idleOnTick() {
      const now = Date.now()
      if (load() > 0) lastBusy = now
      else if (now - lastBusy >= idleMs) {
        dispose()
        resolve()
      }
    }, tick)
  })
  function dispose(): void {
    if (done) return
    done = true
    clearInterval(timer)
    closeChannel.unsubscribe(closeOnTunnelClosed)
  }
  return { idle, dispose }
}
