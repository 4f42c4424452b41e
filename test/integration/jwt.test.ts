import http from 'node:http'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { afterEach, describe, expect, it } from 'vitest'
import { jwtTokens } from '../../src/targets/jwt.js'
import { parseRoutes } from '../../src/config/routes.js'
import { expectNoSecretsLogged, startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const SECRET = 'an-hmac-secret-that-is-long-enough-0123456789'
const HOUR_MS = 3_600_000
const req = {} as never
const nowS = () => Math.floor(Date.now() / 1000)

async function tempFile(name: string, content: string): Promise<string> {
  const dir = await tempDir(d, 'gangway-jwt-')
  const file = join(dir, name)
  await writeFile(file, content)
  return file
}

function hs256(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', ...header })
    .sign(new TextEncoder().encode(SECRET))
}

async function secretResolver(extra = {}) {
  const keyFile = await tempFile('secret', `${SECRET}\n`)
  return jwtTokens({ keyFile, maxLifetimeMs: HOUR_MS, singleUse: false, ...extra })
}

describe('signed tokens (JWT)', () => {
  it('resolves the target claim of an HS256 token (key file with a trailing newline)', async () => {
    const jwt = await secretResolver()
    const token = await hs256({ target: 'db.internal:5432', exp: nowS() + 60 })
    expect(await jwt.resolve(token, req)).toMatchObject({
      target: { kind: 'tcp', host: 'db.internal', port: 5432 },
      trusted: false,
    })
  })

  it("accepts websockify's host and port claims, and a route name (trusted)", async () => {
    const routes = parseRoutes({ lab: { target: '10.0.0.5:5900' } }, 'routes')
    const jwt = await secretResolver({ routes })
    expect(
      await jwt.resolve(await hs256({ host: '::1', port: 5901, exp: nowS() + 60 }), req),
    ).toMatchObject({ target: { host: '::1', port: 5901 } })
    expect(await jwt.resolve(await hs256({ target: 'lab', exp: nowS() + 60 }), req)).toMatchObject({
      target: { host: '10.0.0.5' },
      trusted: true,
      label: 'route:lab',
    })
  })

  it('refuses expired, not-yet-valid, exp-less, too long-lived, mis-signed and unknown-target tokens', async () => {
    const jwt = await secretResolver()
    const bad = [
      await hs256({ target: 'h:1', exp: nowS() - 60 }),
      await hs256({ target: 'h:1', exp: nowS() + 60, nbf: nowS() + 30 }),
      await hs256({ target: 'h:1' }),
      await hs256({ target: 'h:1', exp: nowS() + 2 * 3600 }),
      await hs256({ target: 'h:1', iat: nowS() - 3 * 3600, exp: nowS() + 60 }),
      await hs256({ target: 'no-port', exp: nowS() + 60 }),
      await new SignJWT({ target: 'h:1', exp: nowS() + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(`${SECRET}x`)),
      'not.a.jwt',
    ]
    for (const [i, token] of bad.entries())
      expect(await jwt.resolve(token, req), String(i)).toBeNull()
  })

  it('checks aud and iss when configured', async () => {
    const jwt = await secretResolver({ audience: 'gangway', issuer: 'https://idp.test' })
    const exp = nowS() + 60
    expect(
      await jwt.resolve(
        await hs256({ target: 'h:1', exp, aud: 'gangway', iss: 'https://idp.test' }),
        req,
      ),
    ).not.toBeNull()
    expect(
      await jwt.resolve(
        await hs256({ target: 'h:1', exp, aud: 'other', iss: 'https://idp.test' }),
        req,
      ),
    ).toBeNull()
    expect(await jwt.resolve(await hs256({ target: 'h:1', exp, aud: 'gangway' }), req)).toBeNull()
  })

  it('refuses a replayed jti when single use is on, and a token without jti', async () => {
    const jwt = await secretResolver({ singleUse: true })
    const token = await hs256({ target: 'h:1', exp: nowS() + 60, jti: 'once-1' })
    expect(await jwt.resolve(token, req)).not.toBeNull()
    expect(await jwt.resolve(token, req)).toBeNull()
    expect(await jwt.resolve(await hs256({ target: 'h:1', exp: nowS() + 60 }), req)).toBeNull()
  })

  it.each(['RS256', 'ES256', 'EdDSA'] as const)(
    'verifies %s with a PEM public key, private key or JWKS file',
    async (alg) => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
      const token = await new SignJWT({ target: 'h:7', exp: nowS() + 60 })
        .setProtectedHeader({ alg })
        .sign(privateKey)
      const files = [
        await tempFile('pub.pem', await exportSPKI(publicKey)),
        await tempFile('key.pem', await exportPKCS8(privateKey)),
        await tempFile(
          'jwks.json',
          JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), alg }] }),
        ),
      ]
      for (const keyFile of files) {
        const jwt = await jwtTokens({ keyFile, maxLifetimeMs: HOUR_MS, singleUse: false })
        expect(await jwt.resolve(token, req), keyFile).toMatchObject({ target: { port: 7 } })
      }
      // HS256 signed with the public key's bytes must not pass (algorithm confusion).
      const pem = await exportSPKI(publicKey)
      const forged = await new SignJWT({ target: 'h:7', exp: nowS() + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(pem))
      const jwt = await jwtTokens({
        keyFile: files[0] ?? '',
        maxLifetimeMs: HOUR_MS,
        singleUse: false,
      })
      expect(await jwt.resolve(forged, req)).toBeNull()
    },
  )

  it('fetches a JWKS URL, and reports it down as an outage (throws → 4503), not an unknown token', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    const jwks = JSON.stringify({
      keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', kid: 'k1' }],
    })
    const server = http.createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(jwks),
    )
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    const token = await new SignJWT({ target: 'h:9', exp: nowS() + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(privateKey)
    const jwt = await jwtTokens({
      jwksUrl: `http://127.0.0.1:${port}/jwks`,
      maxLifetimeMs: HOUR_MS,
      singleUse: false,
    })
    expect(await jwt.resolve(token, req)).toMatchObject({ target: { port: 9 } })
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    const down = await jwtTokens({
      jwksUrl: `http://127.0.0.1:${port}/jwks`,
      maxLifetimeMs: HOUR_MS,
      singleUse: false,
    })
    await expect(down.resolve(token, req)).rejects.toThrow()
  })

  it('refuses a short HMAC secret at startup', async () => {
    const keyFile = await tempFile('short', 'too-short\n')
    await expect(jwtTokens({ keyFile, maxLifetimeMs: HOUR_MS, singleUse: false })).rejects.toThrow(
      /at least 32 bytes/,
    )
  })

  it('end to end: opens the tunnel, applies the per-token connection limit, logs no token', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const keyFile = await tempFile('secret', SECRET)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(
      d,
      { jwtKey: keyFile, allow: [`127.0.0.1:${echo.port}`] },
      logger,
    )
    const token = await hs256({
      target: `127.0.0.1:${echo.port}`,
      exp: nowS() + 60,
      jti: 'j-1',
      maxConnections: 1,
    })
    const ws = await openWs(d, url, { headers: { authorization: `Bearer ${token}` } })
    const reply = new Promise<string>((resolve) =>
      ws.once('message', (data: Buffer) => resolve(data.toString())),
    )
    ws.send(Buffer.from('hello'))
    expect(await reply).toBe('hello')
    expect(
      await connectAndClose(url, { headers: { authorization: `Bearer ${token}` } }),
    ).toMatchObject({ code: 4429 })
    const expired = await hs256({ target: `127.0.0.1:${echo.port}`, exp: nowS() - 10 })
    expect(await connectAndClose(`${url}?token=${expired}`)).toMatchObject({ code: 4401 })
    expectNoSecretsLogged(logger, [token, expired, SECRET])
  })
})
