/**
 * A refused signed token (JWT) used to log `missing or invalid token: unknown to routes+jwt` whatever went
 * wrong. The log line's reason now names it (bad signature, expired, lifetime above jwtMaxLifetime, wrong
 * aud or iss, unknown route), while the client still gets only the generic 4401 reason.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT, type JWTPayload } from 'jose'
import { afterEach, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'an-hmac-secret-that-is-long-enough-0123456789'
const nowS = () => Math.floor(Date.now() / 1000)

function sign(claims: JWTPayload, secret = SECRET): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .sign(new TextEncoder().encode(secret))
}

it('logs why each signed token was refused, and tells the client nothing more than 4401', async () => {
  const dir = await tempDir(d, 'gangway-jwt-why-')
  const jwtKey = join(dir, 'secret')
  await writeFile(jwtKey, SECRET)
  const logger = memoryLogger()
  const routes = parseRoutes({ lab: { target: '127.0.0.1:9' } }, 'routes')
  const { url } = await startAccessTunnel(
    d,
    {
      jwtKey,
      routes,
      jwtAudience: 'gangway',
      jwtIssuer: 'https://idp.test',
      jwtMaxLifetimeMs: 600_000,
      maxAuthFailures: 0,
    },
    logger,
  )
  const good = { aud: 'gangway', iss: 'https://idp.test', target: 'lab' }
  const cases: Array<[string, Promise<string>, RegExp]> = [
    ['signature', sign({ ...good, exp: nowS() + 60 }, `${SECRET}x`), /jwt: bad signature/],
    ['expired', sign({ ...good, exp: nowS() - 60 }), /jwt: expired/],
    ['lifetime', sign({ ...good, exp: nowS() + 3600 }), /above jwtMaxLifetime \(600 s\)/],
    ['aud', sign({ ...good, aud: 'other', exp: nowS() + 60 }), /jwt: wrong aud/],
    ['iss', sign({ ...good, iss: 'https://evil.test', exp: nowS() + 60 }), /jwt: wrong iss/],
    ['route', sign({ ...good, target: 'nope', exp: nowS() + 60 }), /unknown route/],
  ]
  const tokens: string[] = []
  for (const [name, minting, reason] of cases) {
    const token = await minting
    tokens.push(token)
    const before = logger.lines.length
    const closed = await connectAndClose(url, { headers: { authorization: `Bearer ${token}` } })
    expect(closed, name).toMatchObject({ code: 4401 })
    // The client learns nothing about which check failed.
    expect(closed.reason, name).not.toMatch(/jwt|signature|expired|aud|iss|route|lifetime/i)
    const refused = logger.lines.slice(before).find((l) => l.msg === 'tunnel refused')
    expect(refused?.fields['reason'], name).toMatch(reason)
  }
  expectNoSecretsLogged(logger, [...tokens, SECRET])
})
