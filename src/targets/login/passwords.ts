/**
 * @module targets/login/passwords
 * The password files of the routes' `login` mappings, read like token files: every one is read and checked
 * when the store is built (a missing, unreadable, empty or oversized file is a ConfigError naming the
 * route and the file, so the daemon exits 2), re-read when it changes (its directory is watched, so an
 * editor's rename or a Kubernetes Secret's `..data` swap is seen) and on SIGHUP. A failed re-read keeps the
 * previous password and logs the file and the reason, never the content. The passwords live only here, in
 * memory, as Buffers; nothing else keeps a copy.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Routes } from '../../config/routes.js'
import { ConfigError } from '../../errors.js'
import { silentLogger, type Logger } from '../../log.js'

/** A password file larger than this is a mistake (a key file, a device), not a password. */
export const MAX_PASSWORD_FILE_BYTES = 4096
/** Changes are gathered for this long before one re-read (editors write a file in several steps). */
const RELOAD_DEBOUNCE_MS = 100

export interface PasswordStore {
  /** The password in `file` (a route's `login.passwordFile`), or undefined for a file it does not hold. */
  password(file: string): Buffer | undefined
  /** Re-reads every file (SIGHUP); a file that fails keeps its previous password and is logged. */
  reload(): void
  /** Stops watching. */
  close(): void
}

export interface PasswordStoreOptions {
  readonly logger?: Logger
  /** Re-read a file when it changes (off in tests that do not want watchers). */
  readonly watch?: boolean
}

/**
 * Reads the password file of every route with a `login`.
 * @throws {ConfigError} `route "db" login.passwordFile /etc/gangway/db.pass: cannot read it (ENOENT)`
 */
export function createPasswordStore(
  routes: Routes | undefined,
  options: PasswordStoreOptions = {},
): PasswordStore {
  const logger = options.logger ?? silentLogger
  const passwords = new Map<string, Buffer>()
  for (const route of routes?.values() ?? []) {
    const file = route.options.login?.passwordFile
    if (file === undefined || passwords.has(file)) continue
    try {
      passwords.set(file, readPasswordFile(file))
    } catch (err) {
      throw new ConfigError(`route "${route.name}" login.passwordFile ${file}: ${errorText(err)}`)
    }
  }
  const watchers: FSWatcher[] = []
  const timers = new Map<string, NodeJS.Timeout>()

  function reloadOne(file: string): void {
    try {
      const next = readPasswordFile(file)
      const previous = passwords.get(file)
      if (previous !== undefined && previous.equals(next)) return
      passwords.set(file, next)
      logger.info('password file reloaded', { path: file })
    } catch (err) {
      logger.error('password file reload failed; keeping the previous password', {
        path: file,
        error: errorText(err),
      })
    }
  }

  if (options.watch !== false) {
    const byDirectory = new Map<string, string[]>()
    for (const file of passwords.keys()) {
      const list = byDirectory.get(dirname(file)) ?? []
      list.push(file)
      byDirectory.set(dirname(file), list)
    }
    for (const [directory, files] of byDirectory) {
      const names = new Set(files.map((f) => basename(f)))
      let watcher: FSWatcher
      try {
        watcher = watch(directory, function passwordDirOnChange(_event, changed) {
          // kubelet swaps a Secret volume's `..data` symlink: such an event concerns every file here.
          if (changed !== null && !changed.startsWith('..') && !names.has(changed)) return
          const hit =
            changed === null || changed.startsWith('..')
              ? files
              : files.filter((f) => basename(f) === changed)
          for (const file of hit) {
            clearTimeout(timers.get(file))
            timers.set(
              file,
              setTimeout(() => reloadOne(file), RELOAD_DEBOUNCE_MS),
            )
          }
        })
      } catch (err) {
        logger.warn('password file watch failed; reload with SIGHUP', {
          path: directory,
          error: errorText(err),
        })
        continue
      }
      watcher.on('error', function passwordDirOnWatchError(err: Error) {
        logger.warn('password file watch failed; reload with SIGHUP', {
          path: directory,
          error: err.message,
        })
      })
      watchers.push(watcher)
    }
  }

  return {
    password: (file) => passwords.get(file),
    reload() {
      for (const file of passwords.keys()) reloadOne(file)
    },
    close() {
      for (const timer of timers.values()) clearTimeout(timer)
      timers.clear()
      for (const watcher of watchers.splice(0)) watcher.close()
    },
  }
}

/** A password file's bytes, one trailing newline (LF or CRLF) removed. */
export function readPasswordFile(file: string): Buffer {
  const info = statSync(file) // follows symlinks (Kubernetes Secrets are symlinks)
  if (!info.isFile()) throw new Error('not a regular file')
  if (info.size > MAX_PASSWORD_FILE_BYTES) {
    throw new Error(`larger than ${MAX_PASSWORD_FILE_BYTES} bytes: not a password file`)
  }
  const bytes = readFileSync(file)
  let end = bytes.length
  if (end > 0 && bytes[end - 1] === 0x0a) end--
  if (end > 0 && bytes[end - 1] === 0x0d && end < bytes.length) end--
  if (end === 0) throw new Error('the file is empty')
  return bytes.subarray(0, end)
}

function errorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code !== undefined) return `cannot read it (${code})`
  return err instanceof Error ? err.message : String(err)
}
