/**
 * Found by the target-policy attempt matrix: `--allow '*'` let through two IPv6 spellings that embed an
 * IPv4 address, the deprecated IPv4-compatible form (`::127.0.0.1`, `::10.0.0.1`) and the IPv4-translated
 * form (`::ffff:0:7f00:1`), because only `::` and `::1` of `::/96` were internal. Both ranges are now.
 * Only the policy is asked: nothing is dialled.
 */
import { describe, expect, it } from 'vitest'
import { createTargetPolicy } from '../../src/targets/policy.js'

describe('regression: IPv6 forms embedding an IPv4 address are internal', () => {
  it.each(['::127.0.0.1', '::10.0.0.1', '::a9fe:a9fe', '::ffff:0:7f00:1', '::ffff:0:a00:1'])(
    '%s is refused under a wildcard rule, and passes when an address rule names it',
    async (host) => {
      const wildcard = createTargetPolicy({ allow: ['*'], deny: [] })
      await expect(
        wildcard.check({ kind: 'tcp', host, port: 80 }, { timeoutMs: 1000 }),
      ).rejects.toMatchObject({ code: 'ERR_TARGET_DENIED', closeCode: 4403 })
      const named = createTargetPolicy({ allow: [`[${host}]:80`], deny: [] })
      await expect(
        named.check({ kind: 'tcp', host, port: 80 }, { timeoutMs: 1000 }),
      ).resolves.toMatchObject({ addresses: [{ address: host }] })
    },
  )
})
