import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { freePort } from '../helpers/tcp.js'
import { runGangway } from './gangway-process.js'

const d = createDisposer()
afterEach(() => d.run())

describe('gangway revoke', () => {
  it('says what is missing or wrong with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['revoke', '--fingerprint', '3f2a9c01'], /--state-redis \(or a --config with stateRedis\)/],
      [['revoke', '--state-redis', 'redis://127.0.0.1:1/0'], /exactly one of --fingerprint/],
      [
        ['revoke', '--state-redis', 'redis://127.0.0.1:1/0', '--fingerprint', 'xyz'],
        /a fingerprint is 8 hex characters/,
      ],
      [['revoke', '--state-redis', 'localhost:6379', '--fingerprint', '3f2a9c01'], /redis:\/\//],
      [
        [
          'revoke',
          '--state-redis',
          'redis://127.0.0.1:1/0',
          '--fingerprint',
          '3f2a9c01',
          '--ttl',
          '-1',
        ],
        /--ttl/,
      ],
    ]
    for (const [args, message] of cases) {
      const result = await runGangway(d, args)
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr.join('\n')).toMatch(message)
    }
  })

  it('exits 1 with one line when Redis does not answer', async () => {
    const port = await freePort()
    const result = await runGangway(d, [
      'revoke',
      '--state-redis',
      `redis://127.0.0.1:${port}/0`,
      '--fingerprint',
      '3f2a9c01',
    ])
    expect(result.code).toBe(1)
    expect(result.stderr).toHaveLength(1)
    expect(result.stderr[0]).toMatch(/^gangway: shared state unreachable: .*ECONNREFUSED/)
    expect(result.stdout).toEqual([])
  })

  it('a daemon refuses --state-redis without tokens (nothing to share), exit code 2', async () => {
    const result = await runGangway(d, [
      '--state-redis=redis://127.0.0.1:1/0',
      '127.0.0.1:0',
      '127.0.0.1:1',
    ])
    expect(result.code).toBe(2)
    expect(result.stderr).toEqual([
      'gangway: --state-redis shares token state between nodes: it needs tokens or routes',
    ])
  })
})
