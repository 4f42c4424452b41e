/**
 * @module gateway/tls
 * The listener's TLS material: loading and validating the certificate and key files, and watching them so
 * that a renewed certificate is picked up without a restart (live tunnels keep their sessions; new
 * handshakes get the new certificate). Knows nothing of tunnels.
 */
import { watch, type FSWatcher } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { createSecureContext, type SecureContextOptions } from 'node:tls'
import type { Config } from '../config/options.js'
import { ConfigError } from '../errors.js'

export interface TlsSettings {
  readonly certFile: string
  /** Defaults to `certFile` (one PEM holding both, as websockify allows). */
  readonly keyFile: string
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3'
  /** OpenSSL cipher list for TLS 1.2; undefined keeps Node's defaults. */
  readonly ciphers: string | undefined
}

/** The listener's TLS settings from the config; undefined without `--cert` (plain ws:). */
export function tlsSettings(config: Config): TlsSettings | undefined {
  if (config.tlsCert === undefined) return undefined
  return {
    certFile: config.tlsCert,
    keyFile: config.tlsKey ?? config.tlsCert,
    minVersion: config.tlsMinVersion,
    ciphers: config.tlsCiphers,
  }
}

/** Reads and validates the files; throws a `ConfigError` naming the file and the problem. */
export async function loadTlsOptions(settings: TlsSettings): Promise<SecureContextOptions> {
  // One after the other, so that with both missing the error names the certificate, deterministically.
  const cert = await readPem(settings.certFile, 'certificate')
  const key = await readPem(settings.keyFile, 'key')
  checkPemBlocks(settings, cert, key)
  const options: SecureContextOptions = {
    cert,
    key,
    minVersion: settings.minVersion,
    ...(settings.ciphers === undefined ? {} : { ciphers: settings.ciphers }),
  }
  try {
    createSecureContext(options) // fails on a key that does not match, a bad cipher list, …
  } catch (err) {
    const raw = err instanceof Error ? err.message : String(err)
    const why = /key values mismatch/.test(raw)
      ? `the key does not match the certificate (${raw})`
      : raw
    throw new ConfigError(`TLS ${settings.certFile} / ${settings.keyFile}: ${why}`, { cause: err })
  }
  return options
}

/**
 * OpenSSL's own words for a missing or encrypted key ("DECODER routines::unsupported") name neither the
 * file nor the fix: say which file lacks what, before OpenSSL sees it.
 */
function checkPemBlocks(settings: TlsSettings, cert: Buffer, key: Buffer): void {
  const certText = cert.toString('latin1')
  const keyText = key.toString('latin1')
  if (!certText.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError(
      `TLS certificate ${settings.certFile} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`,
    )
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(keyText)) {
    throw new ConfigError(
      `TLS key ${settings.keyFile} is encrypted (passphrase keys are not supported): decrypt it with ` +
        `openssl pkey -in ${settings.keyFile} -out key.pem, readable by the service user only`,
    )
  }
  if (/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(keyText)) return
  throw new ConfigError(
    settings.keyFile === settings.certFile
      ? `TLS key missing: ${settings.certFile} holds a certificate but no private key; ` +
          'give the key file with --key (or append the key to the certificate file)'
      : `TLS key ${settings.keyFile} holds no PEM private key ("-----BEGIN PRIVATE KEY-----")`,
  )
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error'
    throw new ConfigError(`cannot read TLS ${what} ${file} (${code})`, { cause: err })
  }
}

/** Let a renewal finish writing both files before reading them. */
const SETTLE_MS = 200

/**
 * Calls `onChange` (debounced) when either file changes. Watches the directories, not the files: renewal
 * tools replace a certificate by renaming a new file over it, which a file watch would lose track of.
 * Returns a function that stops watching.
 */
export function watchTlsFiles(settings: TlsSettings, onChange: () => void): () => void {
  const names = new Map<string, Set<string>>()
  for (const file of [settings.certFile, settings.keyFile]) {
    const dir = dirname(file)
    const set = names.get(dir) ?? new Set<string>()
    set.add(basename(file))
    names.set(dir, set)
  }
  let timer: NodeJS.Timeout | undefined
  const watchers: FSWatcher[] = []
  for (const [dir, files] of names) {
    const watcher = watch(dir, function dirOnChange(_event, name) {
      // `..data` and its kin: a Kubernetes Secret volume swaps its files in at once (see isAtomicSwap).
      if (name !== null && !files.has(name.toString()) && !name.toString().startsWith('..')) return
      clearTimeout(timer)
      timer = setTimeout(onChange, SETTLE_MS)
    })
    watcher.on('error', () => watcher.close())
    watchers.push(watcher)
  }
  return function stopWatching(): void {
    clearTimeout(timer)
    for (const watcher of watchers) watcher.close()
  }
}
