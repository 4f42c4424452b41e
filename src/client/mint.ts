/**
 * @module client/mint
 * `gangway token`: mints a signed token (JWT) for the daemon's JWT resolver, so operators and scripts can
 * hand out short-lived access without writing code. The key file is the one the daemon reads with
 * `--jwt-key`: an HMAC secret (HS256), or a PEM private key (RS256, ES256 on P-256, or EdDSA on Ed25519;
 * the daemon derives the public key from the same file).
 * Knows nothing of the daemon: only the key file and the claims.
 */
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { SignJWT } from 'jose'
import { ConfigError } from '../errors.js'

export interface MintOptions {
  keyFile: string
  /** What the token opens: a `host:port`/`unix:/path` target, or the name of a configured route. */
  target: string
  ttlSeconds: number
  singleUse: boolean
  maxConnections: number | undefined
  /** Payload bytes (both directions) one tunnel may carry; the daemon closes it with 4413 beyond. */
  maxBytes: number | undefined
  idleTimeoutSeconds: number | undefined
  audience: string | undefined
  issuer: string | undefined
}

/** The daemon's minimum HMAC secret length (src/targets/jwt.ts). */
const MIN_SECRET_BYTES = 32

interface SigningKey {
  alg: 'HS256' | 'RS256' | 'ES256' | 'EdDSA'
  key: KeyObject | Uint8Array
}

async function signingKey(file: string): Promise<SigningKey> {
  const bytes = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`--key: cannot read ${file} (${err.code ?? err.message})`)
  })
  const text = bytes.toString('utf8').trim()
  if (text.startsWith('-----BEGIN')) {
    let key: KeyObject
    try {
      key = createPrivateKey(text)
    } catch {
      throw new ConfigError(`--key: ${file} is not a PEM private key (a public key cannot sign)`)
    }
    const type = key.asymmetricKeyType
    if (type === 'rsa') return { alg: 'RS256', key }
    if (type === 'ed25519') return { alg: 'EdDSA', key }
    if (type === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
      return { alg: 'ES256', key }
    throw new ConfigError(`--key: ${file}: unsupported key type (use RSA, EC P-256 or Ed25519)`)
  }
  // An HMAC secret: the file's bytes, one trailing newline removed (as the daemon reads it).
  const secret = bytes.subarray(
    0,
    bytes.length - (/\r?\n$/.exec(bytes.toString('latin1'))?.[0].length ?? 0),
  )
  if (secret.length < MIN_SECRET_BYTES) {
    throw new ConfigError(
      `--key: an HMAC secret needs at least ${MIN_SECRET_BYTES} bytes (${file} has ${secret.length})`,
    )
  }
  return { alg: 'HS256', key: secret }
}

/** Signs a token with `exp` (and `iat`), the target claim, and the optional limits and `jti`. */
export async function mintToken(options: MintOptions, now = Date.now()): Promise<string> {
  const { alg, key } = await signingKey(options.keyFile)
  const claims: Record<string, unknown> = { target: options.target }
  if (options.maxConnections !== undefined) claims['maxConnections'] = options.maxConnections
  if (options.maxBytes !== undefined) claims['maxBytes'] = options.maxBytes
  if (options.idleTimeoutSeconds !== undefined) claims['idleTimeout'] = options.idleTimeoutSeconds
  const iat = Math.floor(now / 1000)
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.max(1, Math.round(options.ttlSeconds)))
  if (options.singleUse) jwt = jwt.setJti(randomUUID())
  if (options.audience !== undefined) jwt = jwt.setAudience(options.audience)
  if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer)
  return jwt.sign(key)
}
