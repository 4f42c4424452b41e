/**
 * Found by the outside attack review (issue 13, finding 5): `/??token=…&route=…` and `/?route=other#&token=…`
 * carried a valid token (the carrier reads the query with URLSearchParams, which drops one leading `?` and
 * does not stop at `#`), while the redaction read the string its own way (the first `?`, up to `#`): the
 * `tunnel refused` line showed the token in clear. `gangway client` showed such a URL the same way.
 * Redaction now uses the very parse the carrier reads the token with.
 */
import { afterEach, describe, expect, it } from 'vitest'
import net from 'node:net'
import { once } from 'node:events'
import { redactUrl } from '../../src/auth/carriers.js'
import { shownUrl } from '../../src/client/client.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { upgradeRequest } from '../helpers/raw-http.js'
import { memoryLogger } from '../helpers/tunnel.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'valid-echo-token-Hx27'

/** Sends an upgrade for `path` as written (no client library would send a `#`), resolves with the close. */
async function refusalFor(port: number, path: string): Promise<{ code: number; reason: string }> {
  const socket = net.connect(port, '127.0.0.1')
  d.add(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(upgradeRequest({}, path))
  let buf = Buffer.alloc(0)
  for (let i = 0; i < 100; i++) {
    buf = Buffer.concat([buf, ((await once(socket, 'data')) as [Buffer])[0]])
    const body = buf.subarray(buf.indexOf('\r\n\r\n') + 4)
    if (buf.includes('\r\n\r\n') && body.length >= 2 && body.length >= 2 + (body[1]! & 0x7f)) {
      socket.destroy()
      return { code: body.readUInt16BE(2), reason: body.subarray(4, 2 + body[1]!).toString() }
    }
  }
  throw new Error('no close frame')
}

describe('regression: a token after a second ? or after a #', () => {
  it.each([
    [`/??token=${TOKEN}&route=other`, `/??token=[redacted]&route=other`],
    [`/?route=other#&token=${TOKEN}`, `/?route=other#&token=[redacted]`],
    [`/??%74oken=${TOKEN}&route=other`, `/??%74oken=[redacted]&route=other`],
  ])('%s is refused (4403) and logged as %s', async (path, logged) => {
    const logger = memoryLogger()
    const routes = parseRoutes(
      {
        echo: { target: '127.0.0.1:9', tokens: [TOKEN] },
        other: { target: '127.0.0.1:9', tokens: ['other-token-Lq03'] },
      },
      'routes',
    )
    const { port } = await startAccessTunnel(d, { routes }, logger)
    const { code, reason } = await refusalFor(port, path)
    // The token was read (it is valid, for another route than the one asked for): 4403, not 4401.
    expect(code).toBe(4403)
    expect(reason).not.toContain(TOKEN)
    expect((await logger.waitFor('tunnel refused')).fields['path']).toBe(logged)
    expectNoSecretsLogged(logger, [TOKEN])
  })

  it('redactUrl and gangway client show neither form', () => {
    expect(redactUrl(`/??token=${TOKEN}&route=echo`)).toBe('/??token=[redacted]&route=echo')
    expect(shownUrl(`ws://gw.test/??token=${TOKEN}&route=echo`)).toBe(
      'ws://gw.test/??token=[redacted]&route=echo',
    )
    expect(shownUrl(`ws://gw.test/?route=other#&token=${TOKEN}`)).toBe(
      'ws://gw.test/?route=other#[redacted]',
    )
    expect(shownUrl(`ws://gw.test/#token=${TOKEN}`)).toBe('ws://gw.test/#[redacted]')
    expect(shownUrl(`ws://:pw@gw.test:99999/#token=${TOKEN}`)).not.toContain(TOKEN)
  })
})
