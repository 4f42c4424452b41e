/**
 * A real Redis 7 in a container, spoken to in RESP through a Gangway tunnel by a plain `ws` client:
 * the bytes must arrive unchanged in both directions, pipelined replies in order, and Redis closing its
 * side must close the WebSocket with 1000. One test reaches the container directly with ioredis, so a
 * failure says whether the container path or the tunnel is wrong.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket, { type RawData } from 'ws'
import { DEFAULTS, type Config } from '../../src/config/options.js'
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import { startRedis, type ContainerService } from '../helpers/containers.js'

// --- RESP (version 2) replies, parsed from the accumulated bytes -------------------------------------

class RespError {
  constructor(readonly message: string) {}
}
type Reply = string | number | Buffer | null | RespError | Reply[]

const CRLF = Buffer.from('\r\n')

/** Parses one reply starting at `offset`; `undefined` while `buf` holds only part of it. */
function parseReply(buf: Buffer, offset: number): { value: Reply; next: number } | undefined {
  const eol = buf.indexOf(CRLF, offset)
  if (eol === -1) return undefined
  const line = buf.toString('latin1', offset + 1, eol)
  const afterLine = eol + 2
  switch (buf[offset]) {
    case 0x2b: // '+' simple string
      return { value: line, next: afterLine }
    case 0x2d: // '-' error
      return { value: new RespError(line), next: afterLine }
    case 0x3a: // ':' integer
      return { value: Number(line), next: afterLine }
    case 0x24: {
      // '$' bulk string: length, bytes, CRLF
      const length = Number(line)
      if (length === -1) return { value: null, next: afterLine }
      if (buf.length < afterLine + length + 2) return undefined
      return {
        value: Buffer.from(buf.subarray(afterLine, afterLine + length)),
        next: afterLine + length + 2,
      }
    }
    case 0x2a: {
      // '*' array: count, then that many replies
      const count = Number(line)
      if (count === -1) return { value: null, next: afterLine }
      const items: Reply[] = []
      let next = afterLine
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next)
        if (item === undefined) return undefined
        items.push(item.value)
        next = item.next
      }
      return { value: items, next }
    }
    default:
      throw new Error(
        `not a RESP reply at byte ${offset}: ${JSON.stringify(buf.toString('latin1', offset, offset + 16))}`,
      )
  }
}

/** Collects the bytes a WebSocket receives and hands out the complete RESP replies in order. */
class RespReader {
  #pending: Buffer = Buffer.alloc(0)
  #replies: Reply[] = []
  #failure: Error | undefined
  #wake: (() => void) | undefined

  constructor(ws: WebSocket) {
    ws.on('message', (data: RawData) => this.#push(toBuffer(data)))
    ws.on('close', (code: number) =>
      this.#fail(new Error(`WebSocket closed (${code}) before the reply`)),
    )
  }

  /** Resolves with the next `count` replies once they have all arrived. */
  async read(count: number): Promise<Reply[]> {
    while (this.#replies.length < count) {
      if (this.#failure !== undefined) throw this.#failure
      await new Promise<void>((resolve) => (this.#wake = resolve))
    }
    return this.#replies.splice(0, count)
  }

  #push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    let offset = 0
    for (
      let reply = parseReply(this.#pending, offset);
      reply;
      reply = parseReply(this.#pending, offset)
    ) {
      this.#replies.push(reply.value)
      offset = reply.next
    }
    this.#pending = this.#pending.subarray(offset)
    this.#wake?.()
  }

  #fail(err: Error): void {
    this.#failure ??= err
    this.#wake?.()
  }
}

/** A RESP command (array of bulk strings). */
function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF)
  }
  return Buffer.concat(parts)
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex')

// --- the tests ---------------------------------------------------------------------------------------

let redis: ContainerService | undefined
let server: TunnelServer | undefined
const disposers: (() => Promise<void> | void)[] = []

beforeAll(async () => {
  redis = await startRedis()
  const config: Config = {
    ...DEFAULTS,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target: { kind: 'tcp', host: redis.host, port: redis.port },
  }
  server = createTunnelServer(config)
  await server.listen()
})

afterEach(async () => {
  for (let dispose = disposers.pop(); dispose; dispose = disposers.pop()) await dispose()
})

afterAll(async () => {
  await server?.close({ drainTimeoutMs: 0 })
  await redis?.stop()
})

/** Opens a WebSocket through the tunnel, closed after the test. */
async function openTunnel(): Promise<{ ws: WebSocket; resp: RespReader }> {
  if (server === undefined) throw new Error('the tunnel server did not start')
  const ws = new WebSocket(server.url())
  disposers.push(async () => {
    if (ws.readyState === WebSocket.CLOSED) return
    const closed = once(ws, 'close')
    ws.terminate()
    await closed
  })
  const resp = new RespReader(ws)
  await once(ws, 'open')
  return { ws, resp }
}

describe('Redis 7 in a container', () => {
  it('answers ioredis directly on its mapped loopback port', async () => {
    if (redis === undefined) throw new Error('the Redis container did not start')
    expect(redis.host).toBe('127.0.0.1')
    const client = new Redis({
      host: redis.host,
      port: redis.port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    })
    disposers.push(() => client.disconnect())
    await client.connect()
    expect(await client.ping()).toBe('PONG')
    expect(await client.info('server')).toMatch(/^redis_version:7\./m)
    await client.quit()
  })

  describe('through the Gangway tunnel', () => {
    it('answers PING with +PONG', async () => {
      const { ws, resp } = await openTunnel()
      ws.send(command('PING'))
      expect(await resp.read(1)).toEqual(['PONG'])
    })

    it('stores a 1 MiB random value and returns it byte for byte', async () => {
      const { ws, resp } = await openTunnel()
      const value = randomBytes(1024 * 1024)
      const key = `blob:${randomBytes(8).toString('hex')}`
      ws.send(command('SET', key, value))
      expect(await resp.read(1)).toEqual(['OK'])
      ws.send(command('GET', key))
      const [got] = await resp.read(1)
      expect(Buffer.isBuffer(got)).toBe(true)
      expect((got as Buffer).length).toBe(value.length)
      expect(sha256(got as Buffer)).toBe(sha256(value))
    })

    it('answers a pipeline of 1000 INCRs sent in one message, in order', async () => {
      const { ws, resp } = await openTunnel()
      const key = `counter:${randomBytes(8).toString('hex')}`
      const pipeline = Buffer.concat(Array.from({ length: 1000 }, () => command('INCR', key)))
      ws.send(pipeline)
      const replies = await resp.read(1000)
      expect(replies).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
      ws.send(command('GET', key))
      expect(await resp.read(1)).toEqual([Buffer.from('1000')])
    })

    it('closes the WebSocket with 1000 when QUIT makes Redis close the connection', async () => {
      const { ws, resp } = await openTunnel()
      const closed = once(ws, 'close')
      ws.send(command('QUIT'))
      expect(await resp.read(1)).toEqual(['OK'])
      const [code] = (await closed) as [number, Buffer]
      expect(code).toBe(1000)
    })
  })
})
