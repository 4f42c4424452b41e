/**
 * Issue 13, finding 10: with `--client-targets --allow example.com:443`, every client-named name was
 * resolved, even one no rule could match: 4503 ("cannot resolve") vs 4403 told an unauthenticated client
 * which internal names exist. Name rules are matched first; a name no rule could match (by name, or by
 * an address rule on its port) is 4403 without a DNS query. No name here is ever resolved: the lookup is
 * injected and records what it was asked.
 */
import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import type { Target } from '../../src/config/options.js'
import { createTargetPolicy } from '../../src/targets/policy.js'

function recordingPolicy(allow: string[], deny: string[] = []) {
  const asked: string[] = []
  const policy = createTargetPolicy({
    allow,
    deny,
    lookup(host: string): Promise<LookupAddress[]> {
      asked.push(host)
      if (host === 'www.example.com') return Promise.resolve([{ address: '192.0.2.10', family: 4 }])
      return Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }))
    },
  })
  return { policy, asked }
}

const tcp = (host: string, port: number): Target => ({ kind: 'tcp', host, port })

async function closeCodeOf(p: ReturnType<typeof recordingPolicy>['policy'], t: Target) {
  try {
    await p.check(t, { timeoutMs: 1000 })
    return 'ok'
  } catch (err) {
    return (err as { closeCode: number }).closeCode
  }
}

describe('name rules are matched before resolving (issue 13, finding 10)', () => {
  it('a name no rule could match: 4403 and no DNS query, whether it exists or not', async () => {
    const { policy, asked } = recordingPolicy(['example.com:443', '*.vnc.example.com:5900-5999'])
    for (const host of ['db.internal', 'no-such-name.internal', 'www.example.com', 'example.org']) {
      expect(await closeCodeOf(policy, tcp(host, 443)), host).toBe(4403)
    }
    // Right name, wrong port; a wildcard's domain itself; right wildcard, wrong port.
    expect(await closeCodeOf(policy, tcp('example.com', 22))).toBe(4403)
    expect(await closeCodeOf(policy, tcp('vnc.example.com', 5901))).toBe(4403)
    expect(await closeCodeOf(policy, tcp('a.vnc.example.com', 22))).toBe(4403)
    expect(asked).toEqual([])
  })

  it('a name a rule could match is resolved as before (the answer decides)', async () => {
    const { policy, asked } = recordingPolicy(['example.com:443', '192.0.2.0/24:8080'])
    expect(await closeCodeOf(policy, tcp('example.com', 443))).toBe(4503) // nx in this lookup
    // Any name may resolve into an address rule's block, on that rule's ports only.
    expect(await closeCodeOf(policy, tcp('www.example.com', 8080))).toBe('ok')
    expect(await closeCodeOf(policy, tcp('www.example.com', 8081))).toBe(4403)
    expect(asked).toEqual(['example.com', 'www.example.com'])
  })
})
