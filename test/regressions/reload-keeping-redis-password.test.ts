/**
 * Found by review: a SIGHUP after `stateRedis` changed in the config file (a new password, a new host)
 * logged "config option changed; restart to apply" with the value kept meanwhile, as given: the Redis URL
 * with its password. Passwords in kept URLs are now redacted, as the shared state's own log lines do.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULTS, type Config } from '../../src/config/options.js'
import { logReloadReport } from '../../src/ops/reload.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startReloadable } from '../helpers/reload.js'

const d = createDisposer()
afterEach(() => d.run())

const OLD_PASSWORD = 'old-redis-pass-Tq93'
const NEW_PASSWORD = 'new-redis-pass-Lx48'

function configWith(stateRedis: string): Config {
  return Object.freeze({
    ...DEFAULTS,
    heartbeatMs: 0,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target: undefined,
    routes: parseRoutes({ r: { target: '127.0.0.1:9', tokens: ['a-route-token-Jj20'] } }, 'routes'),
    stateRedis,
  }) as Config
}

describe('regression: a reload that changes stateRedis', () => {
  it('reports the kept URL without its password', async () => {
    const first = configWith(`redis://:${OLD_PASSWORD}@127.0.0.1:6390/0`)
    const next = configWith(`redis://:${NEW_PASSWORD}@127.0.0.1:6391/0`)
    const { reloader, logger } = await startReloadable(d, first, () => next)
    const report = await reloader.reload()
    logReloadReport(logger, report)
    expect(report.ok).toBe(true)
    expect(report.restartNeeded).toEqual([
      { option: 'stateRedis', keeping: 'redis://***@127.0.0.1:6390/0' },
    ])
    expectNoSecretsLogged(logger, [OLD_PASSWORD, NEW_PASSWORD])
  })
})
