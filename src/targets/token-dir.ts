/**
 * @module targets/token-dir
 * One file per token in a directory (websockify's TokenFileName idea): the file named exactly like the
 * token holds its target (`host:port`, `[v6]:port` or `unix_socket:/path`). Adding or removing a token is
 * an atomic file operation, with no reload. Immune to path traversal: a token that is not a plain file
 * name (slashes, backslashes, `..`, a leading dot, NUL, …) is unknown without touching the file system,
 * and symlinks are not followed. These targets are written by an application, so the target policy applies.
 * Knows nothing of WebSockets, carriers or policy.
 */
import { constants } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { join, resolve as resolvePath } from 'node:path'
import { ConfigError } from '../errors.js'
import type { Resolution, TargetResolver } from './resolver.js'
import { parseTokenTarget } from './token-file.js'

/** A token usable as a file name: no separators, no dot files, no `..`. */
const FILE_NAME_TOKEN = /^[A-Za-z0-9_~+=-][A-Za-z0-9._~+=-]{0,254}$/
/** A target file is a line; anything longer is not one. */
const MAX_TARGET_FILE_BYTES = 4096
const UNKNOWN = new Set(['ENOENT', 'ELOOP', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG'])

export interface TokenDirOptions {
  readonly path: string
}

/** @throws {ConfigError} when `path` is not a directory. */
export async function tokenDir(options: TokenDirOptions): Promise<TargetResolver> {
  const dir = resolvePath(options.path)
  const info = await stat(dir).catch(() => undefined)
  if (!info?.isDirectory()) throw new ConfigError(`token directory ${dir}: not a directory`)
  return {
    name: 'token-dir',
    async resolve(token): Promise<Resolution | null> {
      if (!FILE_NAME_TOKEN.test(token)) return null
      const file = join(dir, token)
      let text: string
      try {
        const handle = await open(
          file,
          constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
        )
        try {
          const about = await handle.stat()
          if (!about.isFile() || about.size > MAX_TARGET_FILE_BYTES) return null
          text = await handle.readFile('utf8')
        } finally {
          await handle.close()
        }
      } catch (err) {
        if (UNKNOWN.has((err as NodeJS.ErrnoException).code ?? '')) return null
        throw err
      }
      try {
        const target = parseTokenTarget(text.trim(), 'token file', dir)
        return { target, trusted: false, label: 'token-dir' }
      } catch {
        return null
      }
    },
  }
}
