/**
 * @module client/revoke
 * `gangway revoke`: revokes a token on every node that shares `--state-redis`. Writes the revocation key
 * (new connections with the token are refused with 4401) and publishes it (every node closes the token's
 * live tunnels with 4410 "token revoked"); `--undo` deletes the key and publishes that. Talks to Redis
 * directly: no daemon needs to be reachable.
 * Knows nothing of a running daemon's tunnels: the revocation travels through Redis.
 */
import { ConfigError } from '../errors.js'
import { createSharedState } from '../state/redis-state.js'
import { checkStateUrl } from '../state/from-config.js'
import { planRevocation, planUndo, type RevocationRequest } from '../state/revoke.js'

export interface RevokeOptions extends RevocationRequest {
  readonly stateRedis: string
  readonly statePrefix: string
}

/**
 * @returns one line for the operator: the fingerprint, the revocation's lifetime, how many nodes heard it
 * @throws {ConfigError} for a bad URL; {GangwayError} `ERR_RESOLVER_UNAVAILABLE` when Redis does not answer
 */
/**
 * `gangway revoke --undo`: deletes the revocation and tells every node; the token is accepted again at once.
 * @returns one line for the operator
 * @throws like `revokeToken`
 */
export async function undoRevocation(options: Omit<RevokeOptions, 'ttlSeconds'>): Promise<string> {
  checkStateUrl(options.stateRedis)
  let print
  try {
    print = planUndo(options)
  } catch (err) {
    throw new ConfigError(`revoke --undo: ${(err as Error).message}`)
  }
  const state = createSharedState({ url: options.stateRedis, prefix: options.statePrefix })
  try {
    await state.connected()
    const { wasRevoked, notified } = await state.unrevoke(print)
    return wasRevoked
      ? `revocation of token ${print} undone; ${notified} subscriber(s) notified`
      : `token ${print} was not revoked (wrong fingerprint or --state-prefix, or it expired): nothing to undo`
  } finally {
    await state.close()
  }
}

export async function revokeToken(options: RevokeOptions): Promise<string> {
  checkStateUrl(options.stateRedis)
  let plan
  try {
    plan = planRevocation(options)
  } catch (err) {
    throw new ConfigError(`revoke: ${(err as Error).message}`)
  }
  const state = createSharedState({ url: options.stateRedis, prefix: options.statePrefix })
  try {
    await state.connected()
    const notified = await state.revoke(plan.fingerprint, plan.ttlMs)
    const lifetime = plan.ttlMs === 0 ? 'no expiry' : `for ${Math.ceil(plan.ttlMs / 1000)} s`
    return `revoked token ${plan.fingerprint} (${lifetime}); ${notified} subscriber(s) notified`
  } finally {
    await state.close()
  }
}
