/**
 * @module targets/jwt
 * Signed tokens (JWT, verified with `jose`): self-contained, no shared store. The key is an HMAC secret
 * (HS256), a PEM public key, certificate or private key (RS256, ES256, EdDSA), a JWK or JWKS file, or a JWKS
 * URL. The algorithm follows the key type, so an HMAC-with-a-public-key confusion cannot happen. Claims:
 * `target` (`host:port`, `[v6]:port`, `unix:/path` or a route name) or websockify's `host` + `port`; `exp`
 * required and at most `maxLifetimeMs` away; `nbf`, `aud`, `iss`; single use by `jti`; per-token
 * `maxConnections`, `maxBytes` and `idleTimeout`. Any verification failure is "no such token" (4401), with the
 * precise reason (bad signature, expired, lifetime, aud/iss, unknown route) told to the log only; only a JWKS
 * URL that cannot be fetched is an outage (4503).
 * Knows nothing of WebSockets, carriers or policy (targets/resolver.ts).
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'
import { parseTarget } from '../config/address.js'
import type { Target } from '../config/options.js'
import { ConfigError } from '../errors.js'
import {
  hostPortFields,
  type Resolution,
  type RouteOptions,
  type TargetResolver,
  type WhyRefused,
} from './resolver.js'
import type { Routes } from '../config/routes.js'
import { routeResolution } from './routes.js'

const ASYMMETRIC = ['RS256', 'ES256', 'EdDSA']
/** Clock skew tolerated on `exp` and `nbf`. */
const CLOCK_TOLERANCE_S = 5
/** HS256 secrets shorter than the hash are brute-forceable (RFC 7518 3.2). */
const MIN_SECRET_BYTES = 32
const JWKS_TIMEOUT_MS = 5_000

export interface JwtOptions {
  /** Key file: HMAC secret, PEM key or certificate, JWK or JWKS (JSON). */
  readonly keyFile?: string | undefined
  /** JWKS URL (fetched with a timeout, cached by jose). */
  readonly jwksUrl?: string | undefined
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
  /** Longest accepted lifetime: `exp` at most this far from now (and from `iat`). */
  readonly maxLifetimeMs: number
  /** Refuse a second use of the same `jti` (then `jti` is required). */
  readonly singleUse: boolean
  /**
   * Where used `jti`s are remembered when several nodes must agree (`--state-redis`): true the first
   * time, false after; throws when the store is unreachable (4503). Default: this process's memory.
   */
  readonly claimOnce?: ((jti: string, ttlMs: number) => Promise<boolean>) | undefined
  /** Routes a `target` claim may name. */
  readonly routes?: Routes | undefined
  /** websockify JWTTokenApi compatibility: the key file's text is a base64url HMAC secret. */
  readonly base64urlSecret?: boolean
  /** `jti` → expiry (ms) of used single-use tokens; pass one map to keep it across config reloads. */
  readonly usedJti?: Map<string, number>
  readonly now?: () => number
}

type Key =
  | { kind: 'secret'; key: Uint8Array }
  | { kind: 'public'; key: KeyObject | Exclude<Awaited<ReturnType<typeof importJWK>>, Uint8Array> }
  | { kind: 'set'; get: JWTVerifyGetKey; remote: boolean }

/** @throws {ConfigError} when the key cannot be read or used. */
export async function jwtTokens(options: JwtOptions): Promise<TargetResolver> {
  const key = await loadKey(options)
  const now = options.now ?? Date.now
  const seen = options.usedJti ?? new Map<string, number>() // jti → exp (ms)
  const algorithms = key.kind === 'secret' ? ['HS256'] : ASYMMETRIC

  function forget(at: number): void {
    for (const [jti, exp] of seen) if (exp <= at) seen.delete(jti)
  }

  return {
    name: 'jwt',
    async resolve(token, _req, why?: WhyRefused): Promise<Resolution | null> {
      const refuse = (reason: string | undefined): null => {
        if (reason !== undefined) why?.(`jwt: ${reason}`)
        return null
      }
      let payload: JWTPayload
      try {
        const verifyOptions = {
          algorithms,
          requiredClaims: ['exp'],
          clockTolerance: CLOCK_TOLERANCE_S,
          currentDate: new Date(now()),
          ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
          ...(options.audience === undefined ? {} : { audience: options.audience }),
        }
        const result =
          key.kind === 'set'
            ? await jwtVerify(token, key.get, verifyOptions)
            : await jwtVerify(token, key.key, verifyOptions)
        payload = result.payload
      } catch (err) {
        if (key.kind === 'set' && key.remote && isFetchFailure(err)) throw err
        return refuse(verifyFailure(err))
      }
      const at = now()
      const expMs = (payload.exp ?? 0) * 1000
      const maxS = options.maxLifetimeMs / 1000
      if (expMs - at > options.maxLifetimeMs) {
        return refuse(
          `exp is ${Math.round((expMs - at) / 1000)} s ahead, above jwtMaxLifetime (${maxS} s)`,
        )
      }
      if (payload.iat !== undefined && expMs - payload.iat * 1000 > options.maxLifetimeMs) {
        return refuse(
          `lifetime (exp - iat) is ${Math.round(expMs / 1000 - payload.iat)} s, above jwtMaxLifetime (${maxS} s)`,
        )
      }
      const resolved = resolveClaims(payload, options.routes)
      if (typeof resolved === 'string') return refuse(resolved)
      if (options.singleUse) {
        if (typeof payload.jti !== 'string' || payload.jti === '') {
          return refuse('no jti claim (jwtSingleUse needs one)')
        }
        const until = expMs + CLOCK_TOLERANCE_S * 1000
        if (options.claimOnce !== undefined) {
          if (!(await options.claimOnce(payload.jti, until - at))) {
            return refuse('jti already used (jwtSingleUse)')
          }
        } else {
          forget(at)
          if (seen.has(payload.jti)) return refuse('jti already used (jwtSingleUse)')
          seen.set(payload.jti, until)
        }
      }
      const { maxConnections, ...limits } = claimLimits(payload)
      const tokenKey = typeof payload.jti === 'string' ? `jti:${payload.jti}` : undefined
      if (resolved.limitKey !== undefined) {
        // A route: its own limit holds for all its tokens; the claim is a second limit for this token.
        return {
          ...resolved,
          expiresAt: expMs,
          options: { ...resolved.options, ...limits },
          ...(maxConnections === undefined
            ? {}
            : { tokenLimit: { key: tokenKey, max: maxConnections } }),
        }
      }
      return {
        ...resolved,
        expiresAt: expMs,
        options: {
          ...resolved.options,
          ...limits,
          ...(maxConnections === undefined ? {} : { maxConnections }),
        },
        limitKey: tokenKey,
        label: resolved.label ?? 'jwt',
      }
    },
  }
}

/** The resolution a verified token's claims name, or why they name none (for the log). */
function resolveClaims(payload: JWTPayload, routes: Routes | undefined): Resolution | string {
  const claim = payload['target']
  if (typeof claim === 'string') {
    const route = routes?.get(claim)
    if (route !== undefined) return routeResolution(route)
    return (
      asTarget(() => parseTarget(claim)) ??
      `target claim ${JSON.stringify(claim.slice(0, 100))} is neither a route (unknown route) nor an address`
    )
  }
  const address = hostPortFields(payload) // websockify's JWTTokenApi claims
  if (address === undefined) return 'no target claim (nor host and port)'
  return asTarget(() => parseTarget(address)) ?? 'host and port claims are not an address'
}

function asTarget(parse: () => Target): Resolution | undefined {
  try {
    return { target: parse(), trusted: false }
  } catch {
    return undefined
  }
}

/**
 * Why jose refused a token, in an operator's words; undefined when it is no JWT at all (an opaque token
 * another source may not know either: "unknown to …" says it better).
 */
function verifyFailure(err: unknown): string | undefined {
  if (err instanceof joseErrors.JWTExpired) return 'expired (exp is past)'
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'wrong aud (jwtAudience)'
    if (err.claim === 'iss') return 'wrong iss (jwtIssuer)'
    if (err.claim === 'nbf') return 'not valid yet (nbf is ahead)'
    if (err.reason === 'missing') return `no ${err.claim} claim`
    return `bad ${err.claim} claim (${err.reason})`
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature'
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed for this key'
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key in the key set matches it (kid)'
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return undefined
  if (err instanceof joseErrors.JOSEError) return `refused (${err.code})`
  return 'refused'
}

function claimLimits(payload: JWTPayload): RouteOptions {
  const limits: { maxConnections?: number; idleTimeoutMs?: number; maxBytes?: number } = {}
  const max = payload['maxConnections']
  if (typeof max === 'number' && Number.isSafeInteger(max) && max > 0) limits.maxConnections = max
  const bytes = payload['maxBytes']
  if (typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes > 0) limits.maxBytes = bytes
  const idle = payload['idleTimeout']
  if (typeof idle === 'number' && idle >= 0 && idle < 2 ** 31 / 1000)
    limits.idleTimeoutMs = Math.round(idle * 1000)
  return limits
}

function isFetchFailure(err: unknown): boolean {
  return (
    err instanceof joseErrors.JWKSTimeout ||
    (err instanceof Error && !(err instanceof joseErrors.JOSEError)) ||
    err instanceof joseErrors.JWKSInvalid
  )
}

async function loadKey(options: JwtOptions): Promise<Key> {
  if (options.jwksUrl !== undefined) {
    let url: URL
    try {
      url = new URL(options.jwksUrl)
    } catch {
      throw new ConfigError(`jwksUrl: not a URL: ${JSON.stringify(options.jwksUrl)}`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new ConfigError('jwksUrl: expected an http(s) URL')
    }
    return {
      kind: 'set',
      get: createRemoteJWKSet(url, { timeoutDuration: JWKS_TIMEOUT_MS }),
      remote: true,
    }
  }
  const file = options.keyFile
  if (file === undefined) throw new ConfigError('jwt: a key file or a JWKS URL is needed')
  const bad = (why: string): never => {
    throw new ConfigError(`jwt key ${file}: ${why}`)
  }
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) =>
    bad(`cannot read it (${err.code ?? err.message})`),
  )
  const text = bytes.toString('utf8').trim()
  if (options.base64urlSecret === true && !text.startsWith('-----') && !text.startsWith('{')) {
    return secret(Buffer.from(text, 'base64url'), bad)
  }
  if (text.startsWith('{')) {
    let json: { keys?: unknown; kty?: unknown }
    try {
      json = JSON.parse(text) as { keys?: unknown }
    } catch {
      return bad('not valid JSON')
    }
    if (Array.isArray(json.keys)) {
      return { kind: 'set', get: createLocalJWKSet(json as { keys: JWK[] }), remote: false }
    }
    if (json.kty === 'oct')
      return bad('symmetric JWKs are not supported: put the secret in the file as it is')
    const imported = await importJWK(json as JWK, undefined).catch(() => bad('not a usable JWK'))
    if (imported instanceof Uint8Array) return bad('not an asymmetric JWK')
    return { kind: 'public', key: imported }
  }
  if (text.startsWith('-----BEGIN')) {
    try {
      return { kind: 'public', key: createPublicKey(text) }
    } catch {
      return bad('not a PEM public key, certificate or private key')
    }
  }
  // An HMAC secret, used as the file's bytes (one trailing newline removed).
  return secret(
    bytes.subarray(0, bytes.length - (/\r?\n$/.exec(bytes.toString('latin1'))?.[0].length ?? 0)),
    bad,
  )
}

function secret(key: Uint8Array, bad: (why: string) => never): Key {
  if (key.length < MIN_SECRET_BYTES) bad(`an HMAC secret needs at least ${MIN_SECRET_BYTES} bytes`)
  return { kind: 'secret', key }
}
