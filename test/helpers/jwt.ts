/** Signed tokens for tests, minted as `gangway token` does (src/token.ts). */
import { mintToken } from '../../src/client/mint.js'

/** A single-use signed token for `target` (host:port), valid for a minute, signed with the key in `keyFile`. */
export function singleUseToken(keyFile: string, target: string): Promise<string> {
  return mintToken({
    keyFile,
    target,
    ttlSeconds: 60,
    singleUse: true,
    maxConnections: undefined,
    maxBytes: undefined,
    idleTimeoutSeconds: undefined,
    audience: undefined,
    issuer: undefined,
  })
}
