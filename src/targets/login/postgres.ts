/**
 * @module targets/login/postgres
 * Logs in to PostgreSQL (protocol 3.0) before the tunnel opens: a StartupMessage for the route's `user` and
 * `database`, then the server's authentication request answered with the password (SCRAM-SHA-256, md5 or
 * cleartext), and everything from AuthenticationOk to ReadyForQuery (ParameterStatus, BackendKeyData,
 * notices) kept. The client's side then runs on the open tunnel: SSLRequest and GSSENCRequest are answered
 * `N` (the hop to the daemon is the WebSocket's own TLS), its StartupMessage is read and checked (user and
 * database must be the route's, or absent), and the kept messages are its answer: the client sees a server
 * that trusts it. From then on bytes are relayed as they are. A CancelRequest cannot travel over a
 * logged-in connection and is refused (docs/auth.md says how to cancel).
 */
import { createHash } from 'node:crypto'
import { LoginFailure, type ClientOpening, type LoginModule, type OpeningStep } from './login.js'
import type { LoginReader } from './reader.js'
import { scramClient } from './scram.js'

const PROTOCOL_3_0 = 196_608
const SSL_REQUEST = 80_877_103
const GSSENC_REQUEST = 80_877_104
const CANCEL_REQUEST = 80_877_102
/** PostgreSQL's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
const MAX_STARTUP_BYTES = 10_000
/** A message during the login longer than this is not a login message. */
const MAX_MESSAGE_BYTES = 64 * 1024

/** AuthenticationRequest codes (protocol-message-formats). */
const AUTH_OK = 0
const AUTH_CLEARTEXT = 3
const AUTH_MD5 = 5
const AUTH_SASL = 10
const AUTH_SASL_CONTINUE = 11
const AUTH_SASL_FINAL = 12

export const postgresLogin: LoginModule = {
  protocol: 'postgres',
  async login({ socket, reader, spec, password }) {
    const user = spec.user as string // required for postgres (config/login-spec.ts)
    const database = spec.database ?? user
    socket.write(startupMessage({ user, database }))
    let method = 'trust'
    let scram: ReturnType<typeof scramClient> | undefined
    for (;;) {
      const message = await readMessage(reader)
      if (message.type === 'E')
        throw new LoginFailure('refused', `postgres: ${errorText(message.body)}`)
      if (message.type === 'N' || message.type === 'v') continue // notices; a protocol downgrade
      if (message.type !== 'R') {
        throw new LoginFailure(
          'protocol',
          `postgres: unexpected message ${JSON.stringify(message.type)} during authentication`,
        )
      }
      const code = message.body.readInt32BE(0)
      if (code === AUTH_OK) {
        const kept = [message.raw]
        for (;;) {
          const next = await readMessage(reader)
          if (next.type === 'E')
            throw new LoginFailure('refused', `postgres: ${errorText(next.body)}`)
          kept.push(next.raw)
          if (next.type === 'Z') break
        }
        return {
          opening: clientOpening(user, database, Buffer.concat(kept)),
          details: { database, auth: method },
        }
      }
      if (code === AUTH_CLEARTEXT) {
        method = 'password'
        socket.write(passwordMessage(Buffer.concat([password, Buffer.from([0])])))
      } else if (code === AUTH_MD5) {
        method = 'md5'
        socket.write(
          passwordMessage(
            Buffer.from(`${md5Password(password, user, message.body.subarray(4, 8))}\0`),
          ),
        )
      } else if (code === AUTH_SASL) {
        const mechanisms = message.body
          .subarray(4)
          .toString('utf8')
          .split('\0')
          .filter((m) => m !== '')
        if (!mechanisms.includes('SCRAM-SHA-256')) {
          throw new LoginFailure(
            'protocol',
            `postgres: no supported SASL mechanism (the server offers ${mechanisms.join(', ')})`,
          )
        }
        method = 'scram-sha-256'
        scram = scramClient(password)
        const first = Buffer.from(scram.clientFirst)
        const length = Buffer.alloc(4)
        length.writeInt32BE(first.length)
        socket.write(
          passwordMessage(Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), length, first])),
        )
      } else if (code === AUTH_SASL_CONTINUE && scram !== undefined) {
        const final = await scram
          .final(message.body.subarray(4).toString('utf8'))
          .catch((err: Error) => {
            throw new LoginFailure('protocol', `postgres: ${err.message}`)
          })
        socket.write(passwordMessage(Buffer.from(final)))
      } else if (code === AUTH_SASL_FINAL && scram !== undefined) {
        try {
          scram.verify(message.body.subarray(4).toString('utf8'))
        } catch (err) {
          throw new LoginFailure('refused', `postgres: ${(err as Error).message}`)
        }
      } else {
        throw new LoginFailure(
          'protocol',
          `postgres: authentication method ${code} is not supported (SCRAM-SHA-256, md5 and password are)`,
        )
      }
    }
  },
}

interface Message {
  readonly type: string
  readonly body: Buffer
  /** The whole message, type byte and length included. */
  readonly raw: Buffer
}

async function readMessage(reader: LoginReader): Promise<Message> {
  const head = await reader.read(5)
  const length = head.readInt32BE(1)
  if (length < 4 || length > MAX_MESSAGE_BYTES) {
    throw new LoginFailure(
      'protocol',
      'postgres: the target is not speaking the PostgreSQL protocol',
    )
  }
  const body = await reader.read(length - 4)
  return { type: String.fromCharCode(head[0] as number), body, raw: Buffer.concat([head, body]) }
}

/** StartupMessage: length, protocol 3.0, `name\0value\0` pairs, a final NUL. */
export function startupMessage(params: Readonly<Record<string, string>>): Buffer {
  const pairs = Object.entries(params).flatMap(([k, v]) => [k, v])
  const body = Buffer.from(`${pairs.join('\0')}\0\0`)
  const head = Buffer.alloc(8)
  head.writeInt32BE(8 + body.length, 0)
  head.writeInt32BE(PROTOCOL_3_0, 4)
  return Buffer.concat([head, body])
}

function passwordMessage(body: Buffer): Buffer {
  return message('p', body)
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(4 + body.length, 1)
  return Buffer.concat([head, body])
}

/** `md5` + md5(md5(password + user) + salt), as hex. */
export function md5Password(password: Buffer, user: string, salt: Buffer): string {
  const inner = createHash('md5').update(password).update(user).digest('hex')
  return `md5${createHash('md5').update(inner).update(salt).digest('hex')}`
}

/** An ErrorResponse's severity, code and message as one line. */
function errorText(body: Buffer): string {
  const fields = new Map<string, string>()
  let at = 0
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1)
    if (end === -1) break
    fields.set(String.fromCharCode(body[at] as number), body.subarray(at + 1, end).toString('utf8'))
    at = end + 1
  }
  return `${fields.get('V') ?? fields.get('S') ?? 'ERROR'} ${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`
    .replace(/\s+/g, ' ')
    .trim()
}

/** An ErrorResponse as a server would send it (severity FATAL). */
export function errorResponse(code: string, text: string): Buffer {
  return message('E', Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${text}\0\0`))
}

/**
 * The server as the client sees it: `N` to SSLRequest and GSSENCRequest, then, for a StartupMessage naming
 * the route's user and database (or none), `kept` (AuthenticationOk … ReadyForQuery).
 */
export function clientOpening(user: string, database: string, kept: Buffer): ClientOpening {
  let held: Buffer = Buffer.alloc(0)
  const replies: Buffer[] = []
  return {
    greeting: undefined,
    onClientBytes(chunk: Buffer): OpeningStep {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk])
      for (;;) {
        if (held.length < 8) return more()
        const length = held.readInt32BE(0)
        if (length < 8 || length > MAX_STARTUP_BYTES) {
          return refuse('08P01', 'invalid startup packet length', 'a malformed startup packet')
        }
        if (held.length < length) return more()
        const packet = held.subarray(0, length)
        held = held.subarray(length)
        const code = packet.readInt32BE(4)
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          replies.push(Buffer.from('N'))
          continue
        }
        if (code === CANCEL_REQUEST) {
          return {
            kind: 'refuse',
            reason: 'a CancelRequest cannot travel over a logged-in connection',
          }
        }
        if (code >>> 16 !== 3) {
          return refuse('0A000', 'unsupported frontend protocol', 'an unsupported protocol version')
        }
        const params = startupParams(packet.subarray(8))
        const asked = params.get('user')
        if (asked !== undefined && asked !== user) {
          return refuse(
            '28000',
            `gangway: this route logs in as user "${user}", not "${asked}"`,
            `the client asked for user "${asked}"`,
          )
        }
        const askedDb = params.get('database') ?? asked ?? user
        if (askedDb !== database) {
          return refuse(
            '3D000',
            `gangway: this route connects to database "${database}", not "${askedDb}"`,
            `the client asked for database "${askedDb}"`,
          )
        }
        // A newer minor version or `_pq_.` options: say what this connection speaks (3.0, no options).
        const options = [...params.keys()].filter((k) => k.startsWith('_pq_.'))
        if ((code & 0xffff) !== 0 || options.length > 0)
          replies.push(negotiateProtocolVersion(options))
        replies.push(kept)
        return { kind: 'done', reply: Buffer.concat(replies.splice(0)), rest: held }
      }
    },
  }

  function more(): OpeningStep {
    return replies.length === 0
      ? { kind: 'more' }
      : { kind: 'more', reply: Buffer.concat(replies.splice(0)) }
  }

  function refuse(code: string, text: string, reason: string): OpeningStep {
    return {
      kind: 'refuse',
      reply: Buffer.concat([...replies.splice(0), errorResponse(code, text)]),
      reason,
    }
  }
}

function startupParams(body: Buffer): Map<string, string> {
  const parts = body.toString('utf8').split('\0')
  const params = new Map<string, string>()
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) {
    params.set(parts[i] as string, parts[i + 1] as string)
  }
  return params
}

function negotiateProtocolVersion(options: readonly string[]): Buffer {
  const head = Buffer.alloc(8)
  head.writeInt32BE(PROTOCOL_3_0, 0)
  head.writeInt32BE(options.length, 4)
  return message('v', Buffer.concat([head, ...options.map((o) => Buffer.from(`${o}\0`))]))
}
