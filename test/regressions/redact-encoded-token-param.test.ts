/**
 * Found by review: the refusal log line redacted `?token=` by its literal name only, but the token is read
 * with URLSearchParams, which percent-decodes names: a client sending `?%74oken=SECRET` (or `?tok%65n=`)
 * was authenticated (or refused) with that token while the log line showed it in clear. `redactUrl` now
 * redacts every parameter whose decoded name is `token`.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { redactUrl } from '../../src/auth/carriers.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'encoded-name-secret-Wd30'

describe('regression: a token parameter with a percent-encoded name', () => {
  it.each(['%74oken', 'tok%65n', 'TOKEN', 'to%6Ben'])(
    '?%s=… is redacted in the refusal log line',
    async (name) => {
      const logger = memoryLogger()
      const routes = parseRoutes(
        { r: { target: '127.0.0.1:9', tokens: ['another-token-Mm12'] } },
        'routes',
      )
      const { url } = await startAccessTunnel(d, { routes }, logger)
      expect((await connectAndClose(`${url}?x=1&${name}=${SECRET}&y=2`)).code).toBe(4401)
      const line = await logger.waitFor('tunnel refused')
      expect(line.fields['path']).toBe(`/?x=1&${name}=[redacted]&y=2`)
      expectNoSecretsLogged(logger, [SECRET])
    },
  )

  it('leaves other parameters and fragments alone', () => {
    expect(redactUrl('/a?route=vnc&token=s3&b=%74')).toBe('/a?route=vnc&token=[redacted]&b=%74')
    expect(redactUrl('/?tokenx=1&xtoken=2')).toBe('/?tokenx=1&xtoken=2')
    expect(redactUrl('/?token')).toBe('/?token')
    expect(redactUrl('/no-query')).toBe('/no-query')
    // URLSearchParams reads `a;b` as one value: the whole of it is the token.
    expect(redactUrl('/?token=abc;def&x=1')).toBe('/?token=[redacted]&x=1')
    expect(redactUrl('/?a=1;token=s3&x=1')).toBe('/?a=1;token=[redacted]&x=1')
  })
})
