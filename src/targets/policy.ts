/**
 * @module targets/policy
 * The target policy: which targets a token (or a client) that is not the operator's own config may reach.
 */
import type { LookupAddress } from 'node:dns'
import type { Target } from '../config.js'

export interface CheckedTarget {
  readonly target: Target
  /** Every address the name resolved to, each one checked; undefined for unix targets and IP literals. */
  readonly addresses: readonly LookupAddress[] | undefined
}

export interface TargetPolicy {
  /**
   * Resolves and checks a target.
   * @throws {TunnelError} ERR_TARGET_DENIED (4403) when a rule or a default range forbids it,
   * ERR_TARGET_UNREACHABLE (4503) when the name does not resolve.
   */
  check(target: Target, options: { timeoutMs: number }): Promise<CheckedTarget>
}
