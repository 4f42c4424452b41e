/**
 * @module targets/token-file
 * websockify-compatible token files (TokenFile / ReadOnlyTokenFile): `token: host:port` and
 * `token: unix_socket:/path` lines, in one file or every regular file of a directory. The grammar is
 * websockify's (reference b.2): lines are trimmed; blank lines and `#` lines are skipped; the separator is
 * a colon followed by one whitespace character and must occur exactly once; the target is split at its
 * last colon; a later line wins over an earlier one. Additions: `[v6]:port`, ports checked, and errors that
 * name the real file and line. Every file is validated when loaded: at startup a bad file stops the daemon;
 * a bad reload keeps the previous table whole (the swap is atomic) and leaves live tunnels alone.
 * Knows nothing of WebSockets, carriers or policy.
 */
import { watch, type FSWatcher } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve as resolvePath } from 'node:path'
import type { Target } from '../config/options.js'
import { ConfigError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { tokenKey } from '../config/routes.js'
import type { TargetResolver } from './resolver.js'

/** A target the tunnel reaches over TLS, with the daemon-wide TLS settings (docs/auth.md). */
const TLS_PREFIX = 'tls://'

/** Changes are gathered for this long before one reload (editors write a file in several steps). */
const RELOAD_DEBOUNCE_MS = 100

export interface TokenFileOptions {
  /** A token file, or a directory whose regular files (not dotfiles) are all token files. */
  readonly path: string
  /** Reload when the file (or directory) changes. SIGHUP reloads either way. */
  readonly watch: boolean
  readonly logger?: Logger
}

/** Token → target, keyed by the token's SHA-256. */
export type TokenTable = Map<string, Target>

/**
 * Parses one token file's text into `table` (later lines overwrite earlier ones).
 * @throws {ConfigError} `token file <name>:<line>: <problem>`
 */
export function parseTokenFile(
  text: string,
  fileName: string,
  table: TokenTable = new Map(),
): TokenTable {
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim()
    if (line === '' || line.startsWith('#')) continue
    const at = `token file ${fileName}:${i + 1}`
    const separators = [...line.matchAll(/:\s/g)]
    if (separators.length !== 1 || separators[0]?.index === undefined) {
      throw new ConfigError(
        `${at}: expected "token: host:port" (one colon followed by a space between token and target), found ${separators.length}`,
      )
    }
    const token = line.slice(0, separators[0].index)
    if (token === '') throw new ConfigError(`${at}: empty token`)
    table.set(
      tokenKey(token),
      parseTokenTarget(line.slice(separators[0].index + 2).trim(), at, dirname(fileName)),
    )
  }
  return table
}

/**
 * A token target as websockify writes it: `host:port` (split at the last colon, so a bare `::1:5900` is
 * IPv6), `[v6]:port`, or `unix_socket:/path` (relative paths resolve against `baseDir`); Gangway also
 * reads `tls://host:port` and `tls://[v6]:port`.
 * @throws {ConfigError} `<at>: <problem>`
 */
export function parseTokenTarget(text: string, at: string, baseDir: string): Target {
  if (text.startsWith(TLS_PREFIX)) {
    const plain = parseTokenTarget(text.slice(TLS_PREFIX.length), at, baseDir)
    if (plain.kind !== 'tcp' || text.startsWith(`${TLS_PREFIX}${TLS_PREFIX}`)) {
      throw new ConfigError(`${at}: tls:// takes host:port, got ${JSON.stringify(text)}`)
    }
    return { ...plain, tls: true }
  }
  if (text.startsWith('unix_socket:')) {
    const path = text.slice('unix_socket:'.length)
    if (path === '') throw new ConfigError(`${at}: unix_socket needs a path`)
    return { kind: 'unix', path: resolvePath(baseDir, path) }
  }
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d+)$/.exec(text)
  const colon = text.lastIndexOf(':')
  const host = bracketed ? bracketed[1] : text.slice(0, colon)
  const port = bracketed ? bracketed[2] : text.slice(colon + 1)
  if (colon === -1 || host === undefined || host === '' || host.startsWith('[')) {
    throw new ConfigError(
      `${at}: expected host:port, [v6]:port or unix_socket:/path, got ${JSON.stringify(text)}`,
    )
  }
  const number = /^\d{1,5}$/.test(port ?? '') ? Number(port) : 0
  if (number < 1 || number > 65535) {
    throw new ConfigError(`${at}: port must be 1-65535, got ${JSON.stringify(port)}`)
  }
  return { kind: 'tcp', host, port: number }
}

/**
 * Reads a token file or directory into a fresh table.
 * @throws {ConfigError} for a missing path, an unreadable file or a bad line.
 */
export async function loadTokenFiles(path: string): Promise<TokenTable> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(
      `token file ${path}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`,
    )
  })
  const table: TokenTable = new Map()
  const files: string[] = []
  if (info.isDirectory()) {
    const entries = await readdir(path, { withFileTypes: true })
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.isFile() && !entry.name.startsWith('.')) files.push(join(path, entry.name))
    }
  } else {
    files.push(path)
  }
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`token file ${file}: cannot read it (${err.code ?? err.message})`)
    })
    parseTokenFile(text, file, table)
  }
  return table
}

/**
 * The TokenFile resolver: loads and validates at once, then swaps in a new table on every change.
 * Token-file targets are the operator's own configuration, so the target policy does not apply.
 * @throws {ConfigError} when the file is missing or invalid at startup.
 */
export async function tokenFile(options: TokenFileOptions): Promise<TargetResolver> {
  const logger = options.logger ?? silentLogger
  const path = resolvePath(options.path)
  let table = await loadTokenFiles(path)
  let watcher: FSWatcher | undefined
  let debounce: NodeJS.Timeout | undefined
  let reloading: Promise<void> = Promise.resolve()

  async function reload(): Promise<void> {
    const next = await loadTokenFiles(path)
    table = next // one assignment: a lookup sees the old table or the new one, never a mix
    logger.info('token file reloaded', { path, tokens: next.size })
  }

  /**
   * A reload for a watch event. An update is several events (a Kubernetes volume: the new version's
   * directory, then the `..data` swap; an editor: truncate, then write), and the debounce may fire between
   * them (a busy machine): what it reads then is the old content. That is not reported as a reload; the
   * event that completes the update schedules the next read.
   */
  async function reloadForEvent(): Promise<void> {
    const next = await loadTokenFiles(path)
    if (sameTable(next, table)) {
      logger.debug('token file event: content unchanged', { path })
      return
    }
    table = next
    logger.info('token file reloaded', { path, tokens: next.size })
  }

  function reloadLogged(): void {
    reloading = reloading.then(reloadForEvent).catch(function tokenFileOnReloadError(err: unknown) {
      logger.error('token file reload failed; keeping the previous tokens', {
        path,
        error: err instanceof Error ? err.message : String(err),
      })
    })
  }

  if (options.watch) {
    const isDirectory = (await stat(path)).isDirectory()
    // Editors and `mv` replace a file rather than rewrite it: watch its directory, filtered by name.
    const watched = isDirectory ? path : dirname(path)
    const name = basename(path)
    watcher = watch(watched, function tokenFileOnChange(_event, changed) {
      if (!isDirectory && changed !== null && changed !== name && !isAtomicSwap(changed)) return
      clearTimeout(debounce)
      debounce = setTimeout(reloadLogged, RELOAD_DEBOUNCE_MS)
    })
    watcher.on('error', function tokenFileOnWatchError(err: Error) {
      logger.warn('token file watch failed; reload with SIGHUP', { path, error: err.message })
    })
  }

  return {
    name: 'token-file',
    resolve(token) {
      const target = table.get(tokenKey(token))
      return Promise.resolve(
        target === undefined ? null : { target, trusted: true, label: 'token-file' },
      )
    },
    async reload() {
      await reload()
    },
    async close() {
      clearTimeout(debounce)
      watcher?.close()
      await reloading
    },
  }
}

/**
 * A Kubernetes ConfigMap or Secret volume is updated by swapping its `..data` symlink (the file itself is
 * a symlink into it), so the directory's events name kubelet's `..`-prefixed entries, never the file.
 */
function isAtomicSwap(changed: string): boolean {
  return changed.startsWith('..')
}

/** Same tokens with the same targets. */
function sameTable(a: TokenTable, b: TokenTable): boolean {
  if (a.size !== b.size) return false
  for (const [key, target] of a) {
    const other = b.get(key)
    if (other === undefined || JSON.stringify(other) !== JSON.stringify(target)) return false
  }
  return true
}
