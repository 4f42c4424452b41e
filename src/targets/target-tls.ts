/**
 * @module targets/target-tls
 * TLS towards targets (`tls://host:port`): the per-route `tls` mapping, the daemon-wide defaults
 * (`--target-ca`, `--target-cert`, `--target-key`, `--target-insecure`), the files they name (read and
 * validated once, when the daemon starts, into ready `SecureContext`s), and the handshake itself, run over
 * the TCP socket `dial.ts` connected to exactly the addresses the target policy checked. Only the
 * operator's configuration names files: a token (JWT claim, Redis, the token API, a token directory) can
 * ask for `tls://` and nothing more, so it gets the daemon-wide settings. Knows nothing of WebSockets.
 */
import { readFileSync } from 'node:fs'
import { isIP, type Socket } from 'node:net'
import tls, { type SecureContext, type TLSSocket } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import type { Config, Target } from '../config/options.js'
import type { TunnelError } from '../errors.js'
import { checkSpec, type TargetTlsSpec } from '../config/target-tls-spec.js'
import { ConfigError, tunnelError } from '../errors.js'

/** What one handshake needs: a ready context, the name to verify, whether to verify at all. */
export interface TargetTlsSettings {
  readonly context: SecureContext
  readonly servername: string | undefined
  readonly insecure: boolean
}

/** The loaded TLS settings of a daemon: its defaults and every route's own. */
export interface TargetTls {
  /** The settings for a route's `tls` mapping; `undefined` (no mapping, or a token) = the defaults. */
  settingsFor(spec: TargetTlsSpec | undefined): TargetTlsSettings
  /** One line per setting that turns verification off, for the startup log. */
  readonly warnings: readonly string[]
}

export type TcpTarget = Extract<Target, { kind: 'tcp' }>

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g

/**
 * Reads every file the daemon-wide defaults and the routes name, once, and builds their contexts.
 * @throws {ConfigError} naming the setting and the file: unreadable, not PEM, key not matching.
 */
export function loadTargetTls(
  config: Pick<Config, 'targetCa' | 'targetCert' | 'targetKey' | 'targetInsecure' | 'routes'>,
): TargetTls {
  const files = new Map<string, Buffer>()
  const contexts = new Map<string, SecureContext>()
  const warnings: string[] = []
  const defaults: TargetTlsSpec = {
    ...(config.targetCa === undefined ? {} : { ca: config.targetCa }),
    ...(config.targetCert === undefined ? {} : { cert: config.targetCert }),
    ...(config.targetKey === undefined ? {} : { key: config.targetKey }),
    insecure: config.targetInsecure,
  }
  checkSpec(defaults, (problem) => {
    throw new ConfigError(`--target-${problem}`)
  })
  if (config.targetInsecure) {
    warnings.push(
      'TLS towards targets is NOT verified (--target-insecure): any certificate is accepted; labs only',
    )
  }

  function read(file: string, label: string): Buffer {
    const known = files.get(file)
    if (known !== undefined) return known
    let bytes: Buffer
    try {
      bytes = readFileSync(file)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      throw new ConfigError(`${label} ${file}: cannot read it (${code})`)
    }
    files.set(file, bytes)
    return bytes
  }

  function build(spec: TargetTlsSpec, labelOf: (key: string) => string): TargetTlsSettings {
    const merged = {
      ca: spec.ca ?? defaults.ca,
      cert: spec.cert ?? (spec.key === undefined ? defaults.cert : undefined),
      key: spec.cert !== undefined || spec.key !== undefined ? spec.key : defaults.key,
      // A route that names its own CA means "verify with it", even under --target-insecure.
      insecure: spec.insecure ?? (spec.ca === undefined ? (defaults.insecure ?? false) : false),
    }
    const where = (key: 'ca' | 'cert' | 'key') =>
      spec[key] !== undefined ? labelOf(key) : `--target-${key}`
    const cacheKey = JSON.stringify([merged.ca, merged.cert, merged.key])
    let context = contexts.get(cacheKey)
    if (context === undefined) {
      const options: tls.SecureContextOptions = {}
      if (merged.ca !== undefined)
        options.ca = checkCa(read(merged.ca, where('ca')), merged.ca, where('ca'))
      if (merged.cert !== undefined) {
        options.cert = read(merged.cert, where('cert'))
        options.key = read(
          merged.key ?? merged.cert,
          merged.key === undefined ? where('cert') : where('key'),
        )
      }
      try {
        context = tls.createSecureContext(options)
      } catch (err) {
        const file = `${merged.cert ?? ''}${merged.key === undefined ? '' : ` / ${merged.key}`}`
        throw new ConfigError(
          `${where('cert')} ${file}: not a usable PEM certificate and key (${(err as Error).message})`,
        )
      }
      contexts.set(cacheKey, context)
    }
    return Object.freeze({ context, servername: spec.servername, insecure: merged.insecure })
  }

  const fallback = build({}, (key) => `--target-${key}`)
  const byRoute = new WeakMap<TargetTlsSpec, TargetTlsSettings>()
  for (const route of config.routes?.values() ?? []) {
    const spec = route.options.tls
    if (spec === undefined) continue
    byRoute.set(
      spec,
      build(spec, (key) => `route "${route.name}" tls.${key}`),
    )
    if (spec.insecure === true) {
      warnings.push(
        `TLS towards route "${route.name}" is NOT verified (tls.insecure): any certificate is accepted; labs only`,
      )
    }
  }

  return {
    warnings,
    settingsFor(spec) {
      if (spec === undefined) return fallback
      const found = byRoute.get(spec)
      if (found !== undefined) return found
      // A route this daemon did not load (a configuration swapped in without its TLS files): load it now
      // rather than dial it with other settings; a bad file refuses the tunnel instead of crashing.
      try {
        const built = build(spec, (key) => `route tls.${key}`)
        byRoute.set(spec, built)
        return built
      } catch (err) {
        throw tunnelError('ERR_TARGET_TLS', (err as Error).message, err)
      }
    },
  }
}

/**
 * The settings to dial `target` with: undefined for plain TCP and unix targets.
 * @throws {TunnelError} ERR_TARGET_TLS when a route's mapping was never loaded.
 */
export function tlsSettingsFor(
  store: TargetTls,
  target: Target,
  spec: TargetTlsSpec | undefined,
): TargetTlsSettings | undefined {
  if (target.kind !== 'tcp' || target.tls !== true) return undefined
  return store.settingsFor(spec)
}

/**
 * Starts TLS over a connected socket. SNI and the identity check use `servername`, else the target's host
 * name; an IP target gets no SNI (RFC 6066 forbids it) and its certificate must name the IP.
 */
export function secureTarget(
  socket: Socket,
  target: TcpTarget,
  settings: TargetTlsSettings,
): TLSSocket {
  const servername =
    settings.servername ?? (isIP(target.host) === 0 ? target.host.replace(/\.$/, '') : undefined)
  return tls.connect({
    socket,
    secureContext: settings.context,
    host: target.host,
    ...(servername === undefined ? {} : { servername }),
    rejectUnauthorized: !settings.insecure,
  })
}

/** Maps a handshake failure to the tunnel error the client sees (4502, or HTTP 502). */
export function tlsFailure(err: NodeJS.ErrnoException, described: string): TunnelError {
  const code = err.code ?? 'EUNKNOWN'
  return tunnelError(
    'ERR_TARGET_TLS',
    `TLS handshake with ${described} failed: ${code} (${err.message})`,
    err,
  )
}

/** The short close reason of a TLS refusal: `target TLS failed: <Node's code>` (no addresses, no names). */
export function tlsRefusalReason(err: TunnelError): string | undefined {
  if (err.code !== 'ERR_TARGET_TLS') return undefined
  const cause = err.cause as NodeJS.ErrnoException | undefined
  const code = cause?.code
  return code === undefined ? 'target TLS failed' : `target TLS failed: ${code}`.slice(0, 120)
}

/** The CA file must hold at least one PEM certificate, and each must parse (OpenSSL would skip junk). */
function checkCa(bytes: Buffer, file: string, label: string): Buffer {
  const blocks = bytes.toString('latin1').match(PEM_CERTIFICATE) ?? []
  if (blocks.length === 0) {
    throw new ConfigError(
      `${label} ${file}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`,
    )
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block)
    } catch (err) {
      throw new ConfigError(
        `${label} ${file}: a certificate does not parse (${(err as Error).message})`,
      )
    }
  }
  return bytes
}
