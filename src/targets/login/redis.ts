/**
 * @module targets/login/redis
 * Logs in to Redis before the tunnel opens: `AUTH [user] password` as a RESP array of bulk strings
 * (binary-safe, so any password works), and the one reply read and kept from the client. The client then
 * starts on an authenticated connection: its own first command (`HELLO 3`, `PING`, …) works as it would on
 * a server without a password, and the client never sees the AUTH exchange.
 */
import { LoginFailure, type LoginModule } from './login.js'

/** A RESP simple reply line (`+OK`, `-WRONGPASS …`) longer than this is not an answer to AUTH. */
const MAX_REPLY_BYTES = 4096
const LF = 0x0a

export const redisLogin: LoginModule = {
  protocol: 'redis',
  async login({ socket, reader, spec, password }) {
    const args = spec.user === undefined ? ['AUTH', password] : ['AUTH', spec.user, password]
    socket.write(encodeCommand(args))
    const line = await reader.readUntil(LF, MAX_REPLY_BYTES)
    const text = line.toString('utf8').replace(/\r?\n$/, '')
    if (text.startsWith('+')) return { opening: undefined, details: {} }
    if (text.startsWith('-')) throw new LoginFailure('refused', `redis: ${text.slice(1)}`)
    throw new LoginFailure('protocol', 'redis: the target did not answer AUTH in RESP')
  },
}

/** A RESP array of bulk strings: `*N\r\n$len\r\narg\r\n…`. */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'utf8') : arg
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}
