/**
 * Fuzzed JWTs (src/targets/jwt.ts): arbitrary strings, token-shaped garbage, correctly signed tokens with
 * hostile headers and claims, forged tokens (`alg: none`, HS256 signed with the RSA public key, embedded
 * keys, foreign `kid`s) and mutated valid tokens. The resolver answers null (4401) or a clean resolution,
 * never throws, and never accepts a token the key did not sign. A sample goes through a real daemon.
 */
import { createHmac, generateKeyPairSync, sign as signRaw, type KeyObject } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import type { Resolution, TargetResolver } from '../../src/targets/resolver.js'
import { jwtTokens } from '../../src/targets/jwt.js'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { tempDir } from '../helpers/tmp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'
import { scale } from './scale.js'

const d = createDisposer()
afterEach(() => d.run())
const keys = createDisposer()
afterAll(() => keys.run())

const RUNS = scale(1_000, 30_000)
const DAEMON_CASES = scale(40, 500)
const SECRET = 'an-hmac-secret-that-is-long-enough-for-fuzzing-0123456789'
const HOUR_S = 3600
const req = {} as never
const nowS = (): number => Math.floor(Date.now() / 1000)

const b64 = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A compact JWS over any header and payload (JSON values or raw strings), signed as `alg` says. */
function jws(header: unknown, payload: unknown, key: string | KeyObject | null): string {
  const input = `${b64(header)}.${b64(payload)}`
  if (key === null) return `${input}.`
  const signature =
    typeof key === 'string'
      ? createHmac('sha256', key).update(input).digest()
      : signRaw(key.asymmetricKeyType === 'rsa' ? 'sha256' : null, Buffer.from(input), {
          key,
          ...(key.asymmetricKeyType === 'ec' ? { dsaEncoding: 'ieee-p1363' as const } : {}),
        })
  return `${input}.${signature.toString('base64url')}`
}

let hmac: TargetResolver
let rsa: TargetResolver
let jwks: TargetResolver
let rsaPair: { publicKey: KeyObject; privateKey: KeyObject }
let ecA: { publicKey: KeyObject; privateKey: KeyObject }
let ecB: { publicKey: KeyObject; privateKey: KeyObject }
let rsaPem: string

beforeAll(async () => {
  const dir = await tempDir(keys, 'gangway-jwt-fuzz-')
  rsaPair = generateKeyPairSync('rsa', { modulusLength: 2048 })
  ecA = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  ecB = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  rsaPem = rsaPair.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const files = {
    secret: SECRET,
    'rsa.pem': rsaPem,
    'jwks.json': JSON.stringify({
      keys: [
        { ...ecA.publicKey.export({ format: 'jwk' }), kid: 'a', alg: 'ES256', use: 'sig' },
        { ...ecB.publicKey.export({ format: 'jwk' }), kid: 'b', alg: 'ES256', use: 'sig' },
      ],
    }),
  }
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  const common = { maxLifetimeMs: HOUR_S * 1000, singleUse: false }
  hmac = await jwtTokens({ ...common, keyFile: join(dir, 'secret') })
  rsa = await jwtTokens({ ...common, keyFile: join(dir, 'rsa.pem') })
  jwks = await jwtTokens({ ...common, keyFile: join(dir, 'jwks.json') })
})

/** The resolver's contract for one token: null, or a resolution with a sane target and sane limits. */
async function resolveClean(resolver: TargetResolver, token: string): Promise<Resolution | null> {
  const found = await resolver.resolve(token, req) // a throw fails the property
  if (found === null) return null
  const { target, options = {} } = found
  if (target.kind === 'tcp') {
    expect(target.host.length).toBeGreaterThan(0)
    expect(Number.isInteger(target.port) && target.port >= 1 && target.port <= 65535).toBe(true)
  } else expect(target.kind).toBe('unix')
  for (const value of [options.maxConnections, options.maxBytes])
    if (value !== undefined) expect(Number.isSafeInteger(value) && value > 0).toBe(true)
  if (options.idleTimeoutMs !== undefined)
    expect(options.idleTimeoutMs >= 0 && options.idleTimeoutMs < 2 ** 31).toBe(true)
  expect(found.trusted).toBe(false)
  return found
}

/** JSON values that break naive claim handling. */
const hostileValue = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1.5,
    2 ** 53,
    1e308,
    -1e308,
    5e-324,
    '',
    '127.0.0.1:1',
    'h:0',
    'h:65536',
    'unix:/x',
    '[::1]:1',
    '__proto__',
    true,
    null,
    [],
    {},
  ),
  fc.jsonValue({ maxDepth: 3 }),
)

/** Claims: every known name with a right or wrong value, plus unknown ones; exp valid or not. */
const claims = fc.record(
  {
    target: hostileValue,
    host: hostileValue,
    port: hostileValue,
    exp: fc.oneof(
      fc.constant(nowS() + 60),
      fc.integer({ min: nowS() - 120, max: nowS() + 2 * HOUR_S }),
      hostileValue,
    ),
    nbf: fc.oneof(fc.integer({ min: nowS() - 60, max: nowS() + 60 }), hostileValue),
    iat: fc.oneof(fc.integer({ min: nowS() - 2 * HOUR_S, max: nowS() + 60 }), hostileValue),
    jti: hostileValue,
    maxConnections: hostileValue,
    maxBytes: hostileValue,
    idleTimeout: hostileValue,
    extra: hostileValue,
  },
  { requiredKeys: [] },
)

describe('JWT resolver on hostile input', () => {
  it('arbitrary strings and token-shaped garbage: always null, never a throw', async () => {
    const segment = fc.oneof(
      fc.base64String({ maxLength: 40 }),
      fc.string({ maxLength: 20 }),
      fc.jsonValue({ maxDepth: 2 }).map(b64),
      fc.constantFrom('', 'e30', 'eyJhbGciOiJIUzI1NiJ9', '=', '.', '%00'),
    )
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join('.')),
        ),
        async (token) => {
          for (const resolver of [hmac, rsa, jwks])
            expect(await resolveClean(resolver, token)).toBeNull()
        },
      ),
      { numRuns: RUNS },
    )
  })

  it('correctly signed tokens with hostile claims and headers: null or a clean resolution that obeys exp, nbf and the lifetime', async () => {
    const header = fc.record(
      {
        typ: hostileValue,
        kid: fc.oneof(hostileValue, fc.constantFrom('../../etc/passwd', "' OR 1=1 --", 'a', 'b')),
        cty: hostileValue,
        b64: fc.boolean(),
        crit: fc.oneof(fc.constant(['exp']), fc.constant(['b64']), hostileValue),
        jku: fc.constant('http://127.0.0.1:9/keys'),
        x5u: fc.constant('http://127.0.0.1:9/cert'),
      },
      { requiredKeys: [] },
    )
    await fc.assert(
      fc.asyncProperty(claims, header, async (payload, extra) => {
        const token = jws({ ...extra, alg: 'HS256' }, payload, SECRET)
        const found = await resolveClean(hmac, token)
        if (found === null) return
        const now = nowS()
        expect(typeof payload.exp).toBe('number')
        const exp = payload.exp as number
        expect(exp).toBeGreaterThanOrEqual(now - 6) // 5 s of tolerated skew, 1 s of test time
        expect(exp - now).toBeLessThanOrEqual(HOUR_S)
        if (payload.nbf !== undefined) expect(payload.nbf as number).toBeLessThanOrEqual(now + 5)
        // Critical headers: only RFC 7797's b64, and only with its default value, is understood.
        if (extra.crit !== undefined) expect([extra.crit, extra.b64]).toEqual([['b64'], true])
      }),
      { numRuns: RUNS },
    )
  })

  it('exp and nbf at their edges: 5 s of skew tolerated, not 6', async () => {
    const now = nowS()
    const at = async (claims: Record<string, unknown>) =>
      (await hmac.resolve(jws({ alg: 'HS256' }, { target: 'h:1', ...claims }, SECRET), req)) !==
      null
    expect(await at({ exp: now - 3 })).toBe(true)
    expect(await at({ exp: now - 8 })).toBe(false)
    expect(await at({ exp: now + 60, nbf: now + 3 })).toBe(true)
    expect(await at({ exp: now + 60, nbf: now + 8 })).toBe(false)
    expect(await at({ exp: now + HOUR_S - 2 })).toBe(true)
    expect(await at({ exp: now + HOUR_S + 2 })).toBe(false)
    expect(await at({ exp: `${now + 60}` })).toBe(false)
    expect(await at({ exp: now + 60, nbf: 'soon' })).toBe(false)
    expect(await at({ exp: 1e308 })).toBe(false)
  })

  it('forgeries are refused: alg none, HS256 with the RSA public key, embedded jwk, foreign kid, other algorithms', async () => {
    const exp = nowS() + 60
    const claims = { target: '127.0.0.1:1', exp }
    const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const forged: Array<[TargetResolver, string]> = [
      [hmac, jws({ alg: 'none' }, claims, null)],
      [hmac, jws({ alg: 'None' }, claims, null)],
      [rsa, jws({ alg: 'none' }, claims, null)],
      [jwks, jws({ alg: 'none', kid: 'a' }, claims, null)],
      // Algorithm confusion: HMAC keyed with the public key's PEM text (or its DER bytes).
      [rsa, jws({ alg: 'HS256' }, claims, rsaPem)],
      [rsa, jws({ alg: 'HS256' }, claims, rsaPem.trim())],
      [
        rsa,
        jws(
          { alg: 'HS256' },
          claims,
          rsaPair.publicKey.export({ type: 'spki', format: 'der' }).toString('latin1'),
        ),
      ],
      // An attacker's key embedded in the header, or named by URL.
      [
        jwks,
        jws(
          { alg: 'ES256', jwk: foreign.publicKey.export({ format: 'jwk' }) },
          claims,
          foreign.privateKey,
        ),
      ],
      [
        jwks,
        jws({ alg: 'ES256', kid: 'a', jku: 'http://127.0.0.1:9/' }, claims, foreign.privateKey),
      ],
      // kid tricks: the kid of key b on a token signed by a, a kid that names nothing, no kid.
      [jwks, jws({ alg: 'ES256', kid: 'b' }, claims, ecA.privateKey)],
      [jwks, jws({ alg: 'ES256', kid: '../b' }, claims, ecA.privateKey)],
      [jwks, jws({ alg: 'ES256', kid: 'a' }, claims, foreign.privateKey)],
      [jwks, jws({ alg: 'ES256' }, claims, foreign.privateKey)],
      // The right key, an algorithm the key type does not allow.
      [hmac, jws({ alg: 'HS384' }, claims, SECRET)],
      [rsa, jws({ alg: 'RS256' }, claims, SECRET)],
      [hmac, jws({ alg: 'RS256' }, claims, rsaPair.privateKey)],
    ]
    for (const [i, [resolver, token]] of forged.entries()) {
      expect(await resolveClean(resolver, token), `forgery ${i}`).toBeNull()
    }
    // The counterparts signed with the right keys are accepted (so the refusals above are not vacuous).
    expect(
      await resolveClean(rsa, jws({ alg: 'RS256' }, claims, rsaPair.privateKey)),
    ).not.toBeNull()
    expect(
      await resolveClean(jwks, jws({ alg: 'ES256', kid: 'a' }, claims, ecA.privateKey)),
    ).not.toBeNull()
    expect(
      await resolveClean(jwks, jws({ alg: 'ES256', kid: 'b' }, claims, ecB.privateKey)),
    ).not.toBeNull()
    expect(await resolveClean(hmac, jws({ alg: 'HS256' }, claims, SECRET))).not.toBeNull()
  })

  it('mutated valid tokens are refused unless the mutation left every decoded byte unchanged', async () => {
    const valid = jws(
      { alg: 'HS256', typ: 'JWT' },
      { target: '127.0.0.1:1', exp: nowS() + 600 },
      SECRET,
    )
    const decoded = (token: string): string[] =>
      token.split('.').map((s) => Buffer.from(s, 'base64url').toString('hex'))
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ %'
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('replace' as const),
        at: fc.nat(),
        char: fc.constantFrom(...alphabet),
      }),
      fc.record({
        op: fc.constant('insert' as const),
        at: fc.nat(),
        char: fc.constantFrom(...alphabet),
      }),
      fc.record({ op: fc.constant('delete' as const), at: fc.nat(), char: fc.constant('') }),
    )
    let acceptedMutants = 0
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        let token = valid
        for (const m of mutations) {
          const at = m.at % (token.length + 1)
          token = token.slice(0, at) + m.char + token.slice(m.op === 'insert' ? at : at + 1)
        }
        const found = await resolveClean(hmac, token)
        if (found !== null && token !== valid) {
          acceptedMutants++
          expect(decoded(token)).toEqual(decoded(valid)) // only base64url's unused trailing bits changed
        }
      }),
      { numRuns: RUNS },
    )
    expect(acceptedMutants).toBeLessThan(RUNS)
  })
})

describe('JWTs through a daemon', () => {
  it('hostile tokens in every form close with 4401, and the daemon keeps serving a valid token', async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const dir = await tempDir(d, 'gangway-jwt-daemon-')
    await writeFile(join(dir, 'secret'), SECRET)
    const logger = memoryLogger()
    const { url } = await startAccessTunnel(
      d,
      {
        jwtKey: join(dir, 'secret'),
        allow: [`127.0.0.1/32:${echo.port}`],
        maxAuthFailures: 0, // the brute-force limit has its own test; here every token must reach the resolver
      },
      logger,
    )
    const exp = nowS() + 60
    const target = `127.0.0.1:${echo.port}`
    const hostile = fc.sample(
      fc.oneof(
        fc.string({ minLength: 1, maxLength: 100 }),
        claims.map((c) => jws({ alg: 'HS256' }, { ...c, target: 1, host: 1 }, SECRET)),
        fc.constantFrom(
          jws({ alg: 'none' }, { target, exp }, null),
          jws({ alg: 'HS256' }, { target, exp }, `${SECRET}x`),
          jws({ alg: 'HS256' }, { target, exp: exp - 3600 }, SECRET),
          jws({ alg: 'HS256' }, { target: `${target}0`, exp }, SECRET),
        ),
      ),
      { numRuns: DAEMON_CASES, seed: 8 },
    )
    const codes = new Map<number, number>()
    for (const token of hostile) {
      const { code } = await connectAndClose(`${url}?token=${encodeURIComponent(token)}`)
      codes.set(code, (codes.get(code) ?? 0) + 1)
    }
    expect(codes).toEqual(new Map([[4401, DAEMON_CASES]]))
    expect(echo.sockets.length).toBe(0) // nothing was dialled
    const ws = await openWs(d, `${url}?token=${jws({ alg: 'HS256' }, { target, exp }, SECRET)}`)
    const reply = new Promise<string>((resolve) =>
      ws.once('message', (b: Buffer) => resolve(b.toString())),
    )
    ws.send(Buffer.from('still serving'))
    expect(await reply).toBe('still serving')
    ws.close()
  })
})
