/**
 * @module state/revoke
 * What a revocation names and how long it lasts, shared by `gangway revoke [--undo]` and `POST`/`DELETE
 * /api/revoke`. A
 * revocation is keyed by the token's fingerprint (what logs and the admin API show), so an operator can
 * revoke a token without ever handling it; given the token itself, its fingerprint is computed here and the
 * token goes no further. A signed token (JWT) is revoked until it expires anyway (its `exp`, read without
 * verifying: only the revocation's lifetime depends on it); any other token for `DEFAULT_REVOCATION_TTL_S`
 * unless told otherwise.
 * Knows nothing of tunnels.
 */
import { fingerprint } from '../log.js'
import { isFingerprint, type SharedState } from './redis-state.js'

/** Lifetime of a revocation of a token without `exp`: long enough to remove it from its source meanwhile. */
export const DEFAULT_REVOCATION_TTL_S = 7 * 24 * 3600
/** Added to a JWT's remaining lifetime: the daemon accepts tokens this far past `exp` (clock skew). */
const EXP_MARGIN_MS = 60_000

export interface RevocationRequest {
  readonly token?: string | undefined
  readonly fingerprint?: string | undefined
  /** Seconds; 0 = never expires; undefined = the JWT's `exp`, else the default. */
  readonly ttlSeconds?: number | undefined
}

export interface Revocation {
  readonly fingerprint: string
  readonly ttlMs: number
}

/** @throws {Error} with a one-line message for a request that names no token or a malformed one. */
export function planRevocation(request: RevocationRequest, now = Date.now()): Revocation {
  const { token, ttlSeconds } = request
  if ((token === undefined) === (request.fingerprint === undefined)) {
    throw new Error('give exactly one of a token and a fingerprint')
  }
  if (ttlSeconds !== undefined && !(ttlSeconds >= 0 && Number.isFinite(ttlSeconds))) {
    throw new Error('ttl must be a non-negative number of seconds')
  }
  let print: string
  if (token !== undefined) {
    if (token === '') throw new Error('the token is empty')
    print = fingerprint(token)
  } else {
    print = request.fingerprint!.toLowerCase()
    if (!isFingerprint(print)) throw new Error('a fingerprint is 8 hex characters, as logs show it')
  }
  if (ttlSeconds !== undefined) return { fingerprint: print, ttlMs: ttlSeconds * 1000 }
  const exp = token === undefined ? undefined : jwtExpiry(token)
  const ttlMs =
    exp === undefined ? DEFAULT_REVOCATION_TTL_S * 1000 : Math.max(exp - now, 0) + EXP_MARGIN_MS
  return { fingerprint: print, ttlMs }
}

/** The `exp` of a JWT-shaped token, in ms since the epoch, or undefined. */
function jwtExpiry(token: string): number | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown
    const exp = (payload as { exp?: unknown } | null)?.exp
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** The fingerprint an undo names (a token or its fingerprint, no TTL). @throws {Error} with one line. */
export function planUndo(request: Omit<RevocationRequest, 'ttlSeconds'>): string {
  return planRevocation({ token: request.token, fingerprint: request.fingerprint }).fingerprint
}

/**
 * The JSON answer of `DELETE /api/revoke` to the body `{"token"|"fingerprint"}`: the revocation ends on
 * every node at once. `wasRevoked` is false when none was in force (a typo, or it had expired).
 */
export async function answerUndoRequest(
  body: unknown,
  state: Pick<SharedState, 'unrevoke'>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const { token, fingerprint: print } = fields
  if (
    (token !== undefined && typeof token !== 'string') ||
    (print !== undefined && typeof print !== 'string') ||
    fields['ttl'] !== undefined
  ) {
    return { status: 400, body: { error: 'expected {"token" or "fingerprint": string}' } }
  }
  let target: string
  try {
    target = planUndo({ token, fingerprint: print })
  } catch (err) {
    return { status: 400, body: { error: (err as Error).message } }
  }
  try {
    const { wasRevoked, notified } = await state.unrevoke(target)
    return { status: 200, body: { unrevoked: target, wasRevoked, notified } }
  } catch (err) {
    return { status: 503, body: { error: (err as Error).message } }
  }
}

/** The JSON answer of `POST /api/revoke` to the body `{"token"|"fingerprint", "ttl"?}`. */
export async function answerRevokeRequest(
  body: unknown,
  state: Pick<SharedState, 'revoke'>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const { token, fingerprint: print, ttl } = fields
  if (
    (token !== undefined && typeof token !== 'string') ||
    (print !== undefined && typeof print !== 'string') ||
    (ttl !== undefined && typeof ttl !== 'number')
  ) {
    return {
      status: 400,
      body: { error: 'expected {"token" or "fingerprint": string, "ttl"?: seconds}' },
    }
  }
  let plan: Revocation
  try {
    plan = planRevocation({ token, fingerprint: print, ttlSeconds: ttl })
  } catch (err) {
    return { status: 400, body: { error: (err as Error).message } }
  }
  try {
    const notified = await state.revoke(plan.fingerprint, plan.ttlMs)
    return {
      status: 200,
      body: { revoked: plan.fingerprint, ttl: plan.ttlMs / 1000, notified },
    }
  } catch (err) {
    return { status: 503, body: { error: (err as Error).message } }
  }
}
