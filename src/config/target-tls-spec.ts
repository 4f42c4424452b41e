/**
 * @module config/target-tls-spec
 * The grammar of a route's `tls` mapping (`{ ca, cert, key, servername, insecure }`): paths made absolute,
 * a server name checked, contradictions refused. Reads no file (targets/target-tls.ts loads them) and
 * knows nothing of sockets.
 */
import { isIP } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from '../errors.js'
import { describeValue } from './option-values.js'

/** TLS settings as configured: file paths (absolute), a server name, `insecure`. */
export interface TargetTlsSpec {
  /** PEM file of the CA certificate(s) the target's certificate must chain to (default: Node's roots). */
  readonly ca?: string
  /** PEM client certificate (chain) for targets that require one (mTLS). */
  readonly cert?: string
  /** PEM private key of `cert` (default: read from the `cert` file). */
  readonly key?: string
  /** Name sent as SNI and checked against the certificate (default: the target's host name). */
  readonly servername?: string
  /** Skip certificate verification (labs only; logged as a warning at startup). */
  readonly insecure?: boolean
}

const SPEC_KEYS = ['ca', 'cert', 'key', 'servername', 'insecure']
const DNS_NAME =
  /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/
/**
 * Parses a route's `tls` mapping (`{ ca, cert, key, servername, insecure }`); paths resolve against `cwd`.
 * No file is read here (see `loadTargetTls`).
 * @throws {ConfigError} naming the key.
 */
export function parseTargetTlsSpec(value: unknown, cwd: string = process.cwd()): TargetTlsSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      `expected a mapping with ca, cert, key, servername or insecure, got ${describeValue(value)}`,
    )
  }
  const fields = value as Record<string, unknown>
  const spec: { -readonly [K in keyof TargetTlsSpec]: TargetTlsSpec[K] } = {}
  for (const [key, v] of Object.entries(fields)) {
    if (!SPEC_KEYS.includes(key)) {
      throw new ConfigError(`unknown key ${JSON.stringify(key)} (known: ${SPEC_KEYS.join(', ')})`)
    }
    if (key === 'insecure') {
      if (typeof v !== 'boolean') throw new ConfigError(`insecure: expected true or false`)
      spec.insecure = v
      continue
    }
    if (typeof v !== 'string' || v === '') {
      throw new ConfigError(`${key}: expected a non-empty string, got ${describeValue(v)}`)
    }
    if (key === 'servername') spec.servername = checkServername(v)
    else spec[key as 'ca' | 'cert' | 'key'] = resolvePath(cwd, v)
  }
  checkSpec(spec, (problem) => {
    throw new ConfigError(problem)
  })
  return Object.freeze(spec)
}

function checkServername(name: string): string {
  if (isIP(name) !== 0 || !DNS_NAME.test(name)) {
    throw new ConfigError(
      `servername: expected a DNS name, got ${JSON.stringify(name)} (an IP target is verified against its IP without one)`,
    )
  }
  return name.replace(/\.$/, '')
}

/** The settings that contradict each other, for a route's mapping and the daemon-wide flags alike. */
export function checkSpec(spec: TargetTlsSpec, fail: (problem: string) => never): void {
  if (spec.key !== undefined && spec.cert === undefined)
    fail('key: needs cert (the client certificate)')
  if (spec.insecure === true && spec.ca !== undefined) {
    fail('insecure: cannot be combined with ca (insecure skips verification; drop one of them)')
  }
}
