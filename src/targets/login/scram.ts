/**
 * @module targets/login/scram
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: no channel binding (`n,,`),
 * an empty user name (the server takes the StartupMessage's), and the server's signature checked, so a
 * server that does not know the password cannot pretend to. The password is used as its UTF-8 bytes
 * (PostgreSQL falls back to that when SASLprep does not apply; passwords SASLprep would change are not
 * supported). PBKDF2 runs on the thread pool, not the event loop.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto'

/** A server asking for more iterations than this is not one we log in to (each costs CPU). */
export const MAX_SCRAM_ITERATIONS = 1_000_000

export interface ScramClient {
  /** The client-first message (`n,,n=,r=<nonce>`). */
  readonly clientFirst: string
  /** The client-final message for the server-first message. @throws Error on a malformed or hostile message */
  final(serverFirst: string): Promise<string>
  /** Checks the server-final message (`v=…`). @throws Error when the server's signature is wrong */
  verify(serverFinal: string): void
}

export function scramClient(password: Buffer): ScramClient {
  const nonce = randomBytes(18).toString('base64')
  const clientFirstBare = `n=,r=${nonce}`
  let serverSignature: Buffer | undefined

  return {
    clientFirst: `n,,${clientFirstBare}`,
    async final(serverFirst) {
      const fields = attributes(serverFirst)
      const serverNonce = fields.get('r')
      const salt = fields.get('s')
      const iterations = Number(fields.get('i'))
      if (serverNonce === undefined || !serverNonce.startsWith(nonce) || serverNonce === nonce) {
        throw new Error('SCRAM: the server nonce does not extend ours')
      }
      if (salt === undefined || salt === '') throw new Error('SCRAM: no salt')
      if (
        !Number.isSafeInteger(iterations) ||
        iterations < 1 ||
        iterations > MAX_SCRAM_ITERATIONS
      ) {
        throw new Error(`SCRAM: iteration count out of range (1-${MAX_SCRAM_ITERATIONS})`)
      }
      const salted = await new Promise<Buffer>((resolve, reject) =>
        pbkdf2(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256', (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      )
      const withoutProof = `c=biws,r=${serverNonce}`
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`
      const clientKey = hmac(salted, 'Client Key')
      const storedKey = createHash('sha256').update(clientKey).digest()
      const clientSignature = hmac(storedKey, authMessage)
      const proof = Buffer.alloc(clientKey.length)
      for (let i = 0; i < proof.length; i++) {
        proof[i] = (clientKey[i] as number) ^ (clientSignature[i] as number)
      }
      serverSignature = hmac(hmac(salted, 'Server Key'), authMessage)
      salted.fill(0)
      return `${withoutProof},p=${proof.toString('base64')}`
    },
    verify(serverFinal) {
      const fields = attributes(serverFinal)
      const error = fields.get('e')
      if (error !== undefined) throw new Error(`SCRAM: the server says ${error}`)
      const v = Buffer.from(fields.get('v') ?? '', 'base64')
      if (
        serverSignature === undefined ||
        v.length !== serverSignature.length ||
        !timingSafeEqual(v, serverSignature)
      ) {
        throw new Error('SCRAM: the server signature is wrong (it does not know the password)')
      }
    },
  }
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text).digest()
}

/** `a=1,b=2` → Map. A value may contain `=` (base64); only the first one splits. */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of message.split(',')) {
    const at = part.indexOf('=')
    if (at === 1) out.set(part.slice(0, 1), part.slice(2))
  }
  return out
}
