/**
 * @module state/redis-state
 * State shared by several Gangway nodes through Redis (`--state-redis`): revoked token fingerprints,
 * per-token connection slots (state/slots.ts) and single-use JWT ids, plus the pub/sub channel that tells
 * every node at once to close a revoked token's tunnels. Keys (all under the prefix, `gangway:` by default):
 *
 * - `revoked:<fingerprint>`: a revocation, with a TTL; new connections with that token are refused (4401);
 *   Redis is the only authority: every admission asks it, so a deleted or expired key ends the revocation on
 *   every node at once (no node keeps its own list);
 * - `revocations` (channel): each message is a fingerprint whose live tunnels every node closes (4410), or
 *   `undo:<fingerprint>` when a revocation was undone (the key deleted: `gangway revoke --undo`);
 * - `conns:<limit key>`: sorted set of connection slots (`maxConnections` across nodes);
 * - `jti:<jti>`: a single-use JWT id already used (`SET NX PX`, until the token expires).
 *
 * Fail closed: while Redis is unreachable every check throws `StateUnavailableError` (the gate answers
 * 4503), live tunnels are left alone, `healthy()` is false (reported by `/healthz`, `/readyz` and
 * `gangway_state_up`, without making the node unready), and the outage is logged once when it starts and
 * once when it ends. ioredis reconnects with backoff; nothing queues meanwhile.
 * Never logs a token: only fingerprints travel and are stored.
 * Knows nothing of requests or tunnels.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import { Counter, Gauge, type Registry } from 'prom-client'
import { GangwayError } from '../errors.js'
import { silentLogger, type Logger } from '../log.js'
import { createSharedSlots, type SharedSlots } from './slots.js'

/** Default lease of a connection slot: a crashed node's slots are free again within this time. */
export const DEFAULT_SLOT_LEASE_MS = 30_000
/** How long a Redis command may take before the check fails closed. */
const DEFAULT_TIMEOUT_MS = 2_000
const FINGERPRINT = /^[0-9a-f]{8}$/

/** The shared store did not answer: the gate refuses with 4503 instead of guessing. */
export class StateUnavailableError extends GangwayError {
  override name = 'StateUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_RESOLVER_UNAVAILABLE', message, options)
  }
}

export interface SharedStateOptions {
  /** `redis://[:password@]host[:port][/db]` or `rediss://…`. */
  readonly url: string
  /** Prefix of every key and of the channel. */
  readonly prefix: string
  /** Subscribe to the revocation channel (daemons do; the `revoke` command and a cluster primary don't). */
  readonly subscribe?: boolean
  readonly logger?: Logger
  /** Where the state metrics go (the daemon's metrics registry), if anywhere. */
  readonly registry?: Registry | undefined
  readonly leaseMs?: number
  readonly timeoutMs?: number
}

/** What a node does when a revocation arrives: close the fingerprint's tunnels, list live fingerprints. */
export interface RevocationWatcher {
  /** Closes the live tunnels of `fingerprint`; returns how many. */
  revoked(fingerprint: string): number
  /** Fingerprints of the tunnels open now (rechecked after an outage: messages may have been missed). */
  live(): Iterable<string>
}

export interface SharedState {
  readonly keyPrefix: string
  /** True while Redis answers (both connections when subscribed). */
  healthy(): boolean
  /** @throws {StateUnavailableError} while Redis is unreachable (fail closed). */
  isRevoked(fingerprint: string): Promise<boolean>
  /**
   * True when this node heard of a revocation of `fingerprint` on the channel after `since` (a
   * `performance.now()` time, taken before the admission asked Redis): a dial admitted before the revocation
   * reached Redis is stopped, while a token whose revocation Redis no longer has is not.
   */
  heardRevoked(fingerprint: string, since: number): boolean
  /**
   * Records a revocation for `ttlMs` (0 = no expiry) and publishes it.
   * @returns how many subscribed connections (worker processes, nodes) received the message
   */
  revoke(fingerprint: string, ttlMs: number): Promise<number>
  /**
   * Ends a revocation now (deletes the key) and, if there was one, tells every node (`undo:<fingerprint>` on
   * the channel: they log it; admissions already ask Redis).
   * @returns whether a revocation was in force, and how many subscribed connections received the message
   */
  unrevoke(fingerprint: string): Promise<{ wasRevoked: boolean; notified: number }>
  /** Marks `id` used until `ttlMs` from now; false when it was already used. */
  claimOnce(id: string, ttlMs: number): Promise<boolean>
  readonly slots: SharedSlots
  /** Resolves once Redis answers; rejects with `StateUnavailableError` at the first failure. */
  connected(): Promise<void>
  watch(watcher: RevocationWatcher): void
  close(): Promise<void>
}

/**
 * Fingerprints heard on the channel are remembered this long, only to stop dials that were admitted before
 * the revocation (longer than any connect timeout); admissions after it ask Redis.
 */
const HEARD_MS = 60_000
/** Prefix of a channel message that ends a revocation (older nodes ignore it: not a fingerprint). */
const UNDO = 'undo:'

export function isFingerprint(text: string): boolean {
  return FINGERPRINT.test(text)
}

export function createSharedState(options: SharedStateOptions): SharedState {
  const logger = options.logger ?? silentLogger
  const prefix = options.prefix
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const channel = `${prefix}revocations`
  const nodeId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  const metrics = stateMetrics(options.registry)
  const connectionOptions = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
  }
  const redis = new Redis(options.url, connectionOptions)
  // A subscribed connection can only subscribe: a second one carries the commands.
  const subscriber = options.subscribe
    ? new Redis(options.url, { ...connectionOptions, enableOfflineQueue: true })
    : undefined
  const heard = new Map<string, number>() // fingerprint → when heard
  let watcher: RevocationWatcher | undefined
  let up: boolean | undefined // undefined until the first connect succeeds or fails
  let closed = false
  let lastError = ''
  let subscribed = false
  const stateChanges = new Set<() => void>()

  const slots = createSharedSlots({
    redis,
    prefix,
    nodeId,
    leaseMs: options.leaseMs ?? DEFAULT_SLOT_LEASE_MS,
    onError: () => metrics.errors.inc({ operation: 'renew' }),
  })

  for (const connection of subscriber === undefined ? [redis] : [redis, subscriber]) {
    connection.on('error', function redisOnError(err: Error) {
      markDown(err.message)
    })
    connection.on('close', function redisOnClose() {
      markDown('connection closed')
    })
  }
  redis.on('ready', function redisOnReady() {
    markUpIfBoth()
  })
  if (subscriber !== undefined) {
    // Subscribed again on every (re)connection: the node counts as up only once the channel is heard.
    subscriber.on('ready', function subscriberOnReady() {
      subscriber
        .subscribe(channel)
        .then(function subscriberOnSubscribed() {
          subscribed = true
          markUpIfBoth()
        })
        .catch(markDown)
    })
    subscriber.on('close', function subscriberOnClose() {
      subscribed = false
    })
    subscriber.on('message', function subscriberOnMessage(from: string, message: string) {
      if (from !== channel) return
      if (isFingerprint(message)) onRevoked(message, 'channel')
      else if (message.startsWith(UNDO) && isFingerprint(message.slice(UNDO.length))) {
        onUnrevoked(message.slice(UNDO.length))
      }
    })
  }

  function markDown(reason: unknown): void {
    const why = reason instanceof Error ? reason.message : String(reason)
    if (closed || up === false) return
    up = false
    lastError = why
    for (const wake of stateChanges) wake()
    metrics.up.set(0)
    metrics.errors.inc({ operation: 'connection' })
    logger.error('shared state unreachable: new tunnels with tokens are refused (4503)', {
      redis: redactRedisUrl(options.url),
      error: why,
    })
  }

  function markUpIfBoth(): void {
    if (closed || redis.status !== 'ready') return
    if (subscriber !== undefined && !subscribed) return
    const wasDown = up === false
    up = true
    for (const wake of stateChanges) wake()
    metrics.up.set(1)
    if (wasDown) logger.info('shared state reachable again', { redis: redactRedisUrl(options.url) })
    // Revocations published while this node was away were missed, and slots may have expired.
    slots.renew().catch(() => metrics.errors.inc({ operation: 'renew' }))
    recheckLive().catch(() => metrics.errors.inc({ operation: 'recheck' }))
  }

  async function recheckLive(): Promise<void> {
    if (watcher === undefined) return
    for (const fingerprint of new Set(watcher.live())) {
      const revoked = await redis.exists(`${prefix}revoked:${fingerprint}`).catch(() => 0)
      if (revoked === 1) onRevoked(fingerprint, 'recheck')
    }
  }

  function onUnrevoked(fingerprint: string): void {
    heard.delete(fingerprint)
    logger.info('token revocation undone: the token is accepted again', { token: fingerprint })
  }

  function onRevoked(fingerprint: string, via: string): void {
    const at = performance.now()
    for (const [print, when] of heard) if (at - when > HEARD_MS) heard.delete(print)
    heard.set(fingerprint, at)
    metrics.revocations.inc()
    const count = watcher?.revoked(fingerprint) ?? 0
    logger.info('token revoked: closing its tunnels', { token: fingerprint, tunnels: count, via })
  }

  async function guarded<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (err) {
      metrics.errors.inc({ operation })
      const why = err instanceof Error ? err.message : String(err)
      throw new StateUnavailableError(`shared state (${operation}): ${why}`, { cause: err })
    }
  }

  return {
    keyPrefix: prefix,
    healthy: () => up === true,
    async isRevoked(fingerprint) {
      const found = await guarded('revocation check', () =>
        redis.exists(`${prefix}revoked:${fingerprint}`),
      )
      return found === 1
    },
    heardRevoked(fingerprint, since) {
      const when = heard.get(fingerprint)
      return when !== undefined && when >= since && performance.now() - when <= HEARD_MS
    },
    async revoke(fingerprint, ttlMs) {
      if (!isFingerprint(fingerprint)) throw new Error(`not a token fingerprint: ${fingerprint}`)
      const key = `${prefix}revoked:${fingerprint}`
      const value = JSON.stringify({ at: new Date().toISOString() })
      return guarded('revoke', async () => {
        if (ttlMs > 0) await redis.set(key, value, 'PX', Math.ceil(ttlMs))
        else await redis.set(key, value)
        return redis.publish(channel, fingerprint)
      })
    },
    async unrevoke(fingerprint) {
      if (!isFingerprint(fingerprint)) throw new Error(`not a token fingerprint: ${fingerprint}`)
      return guarded('revoke', async () => {
        const deleted = await redis.del(`${prefix}revoked:${fingerprint}`)
        if (deleted === 0) return { wasRevoked: false, notified: 0 } // nothing for the nodes to hear
        const notified = await redis.publish(channel, `${UNDO}${fingerprint}`)
        return { wasRevoked: true, notified }
      })
    },
    async claimOnce(id, ttlMs) {
      const answer = await guarded('single-use check', () =>
        redis.set(`${prefix}jti:${id}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'),
      )
      return answer === 'OK'
    },
    slots: {
      async acquire(key, max) {
        return guarded('connection limit', () => Promise.resolve(slots.acquire(key, max)))
      },
      renew: () => slots.renew(),
      held: () => slots.held(),
      stop: () => slots.stop(),
    },
    connected() {
      return new Promise<void>((resolve, reject) => {
        function check(): void {
          if (up === undefined) return
          stateChanges.delete(check)
          if (up) resolve()
          else reject(new StateUnavailableError(`shared state unreachable: ${lastError}`))
        }
        stateChanges.add(check)
        check()
      })
    },
    watch(w) {
      watcher = w
    },
    async close() {
      closed = true
      slots.stop()
      const connections = subscriber === undefined ? [redis] : [redis, subscriber]
      const quits = connections.map((c) => c.quit().catch(() => c.disconnect()))
      await Promise.race([
        Promise.all(quits),
        new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ])
      redis.disconnect()
      subscriber?.disconnect()
    },
  }
}

/** The URL without its password, for logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/)[^@/]*@/, '$1***@')
}

function stateMetrics(registry: Registry | undefined) {
  const registers = registry === undefined ? [] : [registry]
  return {
    revocations: new Counter({
      name: 'gangway_revocations_total',
      help: 'Token revocations received on the shared-state channel (each closes that token’s tunnels here).',
      registers,
    }),
    errors: new Counter({
      name: 'gangway_state_errors_total',
      help: 'Shared-state (Redis) failures, by operation: connection, revocation check, connection limit, …',
      labelNames: ['operation'],
      registers,
    }),
    up: new Gauge({
      name: 'gangway_state_up',
      help: '1 while the shared-state Redis answers, else 0 (new tunnels with tokens are then refused).',
      registers,
      // With --workers each worker has its own connection: 1 only while every one answers.
      aggregator: 'min',
    }),
  }
}
