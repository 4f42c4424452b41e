/**
 * @module gateway/handshake
 * Header grammars checked before the target is dialled, so that a handshake ws would refuse never costs a
 * connection to the target: the subprotocol list (RFC 6455 4.1, a comma-separated list of distinct
 * tokens) and, when permessage-deflate is on, the extension offer (RFC 6455 9.1, RFC 7692 7.1).
 * Pure header grammar: knows nothing of tokens or targets.
 */
import { SUBPROTOCOL_BEARER_PREFIX } from '../protocol.js'

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Why a `Sec-WebSocket-Protocol` header is malformed, or undefined when it is a valid token list. */
export function subprotocolProblem(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const seen = new Set<string>()
  for (const raw of header.split(',')) {
    const name = raw.trim()
    if (!TOKEN.test(name)) return 'malformed Sec-WebSocket-Protocol header'
    if (seen.has(name)) {
      // A bearer entry carries a token: name it by its kind only (this text is logged and sent back).
      const shown = name.startsWith(SUBPROTOCOL_BEARER_PREFIX) ? 'a gangway.bearer.* entry' : name
      return `subprotocol ${name === shown ? JSON.stringify(name) : shown} offered twice`
    }
    seen.add(name)
  }
  return undefined
}

const DEFLATE = 'permessage-deflate'
const WINDOW_BITS = /^(8|9|1[0-5])$/

/**
 * Why a `Sec-WebSocket-Extensions` header is malformed or offers permessage-deflate with parameters no
 * server could accept, or undefined. Other extensions are ignored (RFC 6455 9.1 lets a server decline).
 */
export function extensionsProblem(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const offer of header.split(',')) {
    const [name = '', ...params] = offer.split(';').map((part) => part.trim())
    if (!TOKEN.test(name)) return 'malformed Sec-WebSocket-Extensions header'
    const seen = new Set<string>()
    for (const param of params) {
      const eq = param.indexOf('=')
      const key = (eq === -1 ? param : param.slice(0, eq)).trim()
      let value = eq === -1 ? undefined : param.slice(eq + 1).trim()
      if (
        value !== undefined &&
        value.startsWith('"') &&
        value.endsWith('"') &&
        value.length >= 2
      ) {
        value = value.slice(1, -1)
      }
      if (!TOKEN.test(key) || (value !== undefined && !TOKEN.test(value))) {
        return 'malformed Sec-WebSocket-Extensions header'
      }
      if (name !== DEFLATE) continue
      if (seen.has(key)) return `permessage-deflate parameter ${key} given twice`
      seen.add(key)
      if (!deflateParamOk(key, value)) return `unacceptable permessage-deflate parameter ${key}`
    }
  }
  return undefined
}

function deflateParamOk(key: string, value: string | undefined): boolean {
  switch (key) {
    case 'server_no_context_takeover':
    case 'client_no_context_takeover':
      return value === undefined
    case 'server_max_window_bits':
      return value !== undefined && WINDOW_BITS.test(value)
    case 'client_max_window_bits':
      return value === undefined || WINDOW_BITS.test(value)
    default:
      return false
  }
}
