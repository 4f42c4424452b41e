/**
 * @module state/slots
 * Per-token (or per-route) connection slots counted in Redis, so that `maxConnections` holds across every
 * node. Each limit key is a sorted set whose members are the slots taken (`<node id>:<n>`) and whose scores
 * are lease expiries in Redis's own clock (`TIME`, so nodes' clocks never matter). Taking a slot is one Lua
 * script (drop expired members, count, add): atomic, no lost updates between nodes. A node renews the
 * leases of its live tunnels every third of the lease, and removes a slot when its tunnel ends. A node that
 * crashes stops renewing: its slots expire within one lease, so nothing leaks for long. After an outage the
 * renewal re-adds every live slot, so the count is right again as soon as Redis answers.
 * Knows nothing of requests or tokens' meaning.
 */
import type { Redis } from 'ioredis'
import type { ConnectionCounter } from '../auth/limits.js'

/** KEYS[1] = limit key; ARGV = max, lease ms, member. Returns 1 when the slot was taken. */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
`

/** KEYS = limit keys; ARGV[1] = lease ms, ARGV[2..] = one member per key. Re-adds (renews) each slot. */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[i + 1])
  redis.call('PEXPIRE', key, lease)
end
return #KEYS
`

/** Slots renewed per script call (a node with many tunnels sends several). */
const RENEW_BATCH = 500

export interface SharedSlots extends ConnectionCounter {
  /** Renews every live slot's lease now (also done on a timer, and when Redis is back after an outage). */
  renew(): Promise<void>
  /** Slots this node holds. */
  held(): number
  stop(): void
}

export interface SharedSlotsOptions {
  readonly redis: Redis
  /** Prefix of the sorted-set keys (`<prefix>conns:<limit key>`). */
  readonly prefix: string
  readonly nodeId: string
  readonly leaseMs: number
  /** A renewal failed (Redis unreachable): counted and logged by the caller. */
  readonly onError: (err: Error) => void
}

export function createSharedSlots(options: SharedSlotsOptions): SharedSlots {
  const { redis, nodeId, leaseMs } = options
  const live = new Map<string, string>() // member → key
  let lastSlot = 0
  const timer = setInterval(timerOnRenew, Math.max(50, Math.floor(leaseMs / 3)))
  timer.unref()

  function timerOnRenew(): void {
    renew().catch(options.onError)
  }

  async function renew(): Promise<void> {
    const entries = [...live]
    for (let at = 0; at < entries.length; at += RENEW_BATCH) {
      const batch = entries.slice(at, at + RENEW_BATCH)
      await redis.eval(
        RENEW,
        batch.length,
        ...batch.map(([, key]) => key),
        leaseMs,
        ...batch.map(([member]) => member),
      )
    }
  }

  return {
    async acquire(limitKey, max) {
      if (max <= 0) return () => undefined
      const key = `${options.prefix}conns:${limitKey}`
      const member = `${nodeId}:${++lastSlot}`
      const taken = await redis.eval(ACQUIRE, 1, key, max, leaseMs, member)
      if (taken !== 1) return undefined
      live.set(member, key)
      let released = false
      return function release(): void {
        if (released) return
        released = true
        live.delete(member)
        // If Redis is unreachable now, the slot's lease runs out on its own (at most leaseMs later).
        redis.zrem(key, member).catch(() => undefined)
      }
    },
    renew,
    held: () => live.size,
    stop() {
      clearInterval(timer)
    },
  }
}
