/**
 * Found by review: a signed token (JWT) whose `target` names a route uses "the route's target and options"
 * (docs/auth.md), but its limit was counted under its own `jti` instead of the route's: a route with
 * `maxConnections: 1` ("tunnels open at once on this route") let every JWT with a fresh `jti` (as the
 * docs' own example mints them) open its own tunnel. Now the route's limit holds for all its tokens, and a
 * `maxConnections` claim is a second, per-token limit on top of it.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const secret = randomBytes(32)

async function jwt(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
    .sign(secret)
}

async function start(routeLimit: number) {
  const echo = await startEchoServer()
  d.add(() => echo.close())
  const keyFile = join(await tempDir(d), 'jwt.key')
  await writeFile(keyFile, secret)
  const routes = parseRoutes(
    { lab: { target: `127.0.0.1:${echo.port}`, maxConnections: routeLimit } },
    'routes',
  )
  return startAccessTunnel(d, { routes, jwtKey: keyFile }, memoryLogger())
}

describe('regression: JWTs naming a route share the route’s maxConnections', () => {
  it('a second token (another jti) is refused with 4429 while the route is full', async () => {
    const { url } = await start(1)
    await openWs(d, `${url}?token=${await jwt({ target: 'lab' })}`)
    const second = await connectAndClose(`${url}?token=${await jwt({ target: 'lab' })}`)
    expect(second.code).toBe(4429)
  })

  it('a maxConnections claim limits its own token within the route', async () => {
    const { url } = await start(5)
    const token = await jwt({ target: 'lab', maxConnections: 1 })
    await openWs(d, `${url}?token=${token}`)
    expect((await connectAndClose(`${url}?token=${token}`)).code).toBe(4429)
    // Another token still gets in: the route has room.
    await openWs(d, `${url}?token=${await jwt({ target: 'lab', maxConnections: 1 })}`)
  })
})
