/**
 * Found by review: a handshake offering the same `gangway.bearer.<base64url token>` subprotocol twice was
 * refused as a bad upgrade request, and the log line quoted the duplicated entry: the token (base64url,
 * one decode away) reached the log. The duplicate is now named without its value.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { bearerSubprotocol } from '../../src/auth/carriers.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { rawRequest, upgradeRequest } from '../helpers/raw-http.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'twice-offered-secret-Hq71'

describe('regression: a bearer subprotocol offered twice', () => {
  it('is refused with 400 and neither the token nor its encoding is logged', async () => {
    const logger = memoryLogger()
    const routes = parseRoutes({ r: { target: '127.0.0.1:9', tokens: [SECRET] } }, 'routes')
    const { port } = await startAccessTunnel(d, { routes }, logger)
    const entry = bearerSubprotocol(SECRET)
    const answer = await rawRequest(
      port,
      upgradeRequest({ 'Sec-WebSocket-Protocol': `binary, ${entry}, ${entry}` }),
    )
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(answer).not.toContain(entry)
    const line = await logger.waitFor('bad upgrade request')
    expect(String(line.fields['problem'])).toContain('offered twice')
    expectNoSecretsLogged(logger, [SECRET, entry.slice('gangway.bearer.'.length)])
  })
})
