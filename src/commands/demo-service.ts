/**
 * @module commands/demo-service
 * The demo's TCP side: a tiny line-based chat room on 127.0.0.1 that `gangway demo` (and the browser
 * test) put behind the gateway, plus the location of the page that talks to it (`web/demo`).
 * Protocol: UTF-8 lines ending in `\n`. Every line a client sends is broadcast to everyone as
 * `name: text`; `/nick NAME` renames, `/who` lists who is online; lines starting with `*` are from the
 * room itself. Memory is bounded per client: long lines are cut, slow readers are dropped.
 * It knows nothing about WebSockets: any TCP client (`nc 127.0.0.1 PORT`) can join too.
 */
import { once } from 'node:events'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import type { Target } from '../config/options.js'

/** Absolute path of `web/demo` (this file runs as `src/demo.ts` or `dist/demo.js`, both one level down). */
export const DEMO_WEB_ROOT = resolve(fileURLToPath(new URL('../../web/demo/', import.meta.url)))

/** Longest line kept; the rest of a longer line is dropped up to its newline. */
export const MAX_LINE_BYTES = 4096
/** A client whose unsent output grows past this is disconnected instead of buffered for. */
export const MAX_WRITE_BUFFER_BYTES = 1024 * 1024

const NICK_PATTERN = /^[\p{L}\p{N}_.-]{1,24}$/u
const HELP = 'commands: /nick NAME, /who'

export interface DemoService {
  target: Extract<Target, { kind: 'tcp' }>
  /** Disconnects every client and stops listening. */
  close(): Promise<void>
}

interface Client {
  socket: Socket
  name: string
  /** Bytes of the line being received (never more than MAX_LINE_BYTES). */
  pending: Buffer
  /** The current line was cut: drop bytes until the next newline. */
  skipping: boolean
}

/** Starts the chat service on 127.0.0.1 with a free port. */
export async function startDemoService(): Promise<DemoService> {
  const clients = new Set<Client>()
  let guests = 0
  const server: Server = createServer(serverOnConnection)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo

  function serverOnConnection(socket: Socket): void {
    const client: Client = {
      socket,
      name: `guest-${++guests}`,
      pending: Buffer.alloc(0),
      skipping: false,
    }
    const others = clients.size
    clients.add(client)
    socket.setNoDelay(true)
    socket.on('data', function socketOnData(chunk: Buffer) {
      receive(client, chunk)
    })
    socket.on('close', function socketOnClose() {
      if (clients.delete(client)) broadcast(`* ${client.name} left`)
    })
    socket.on('error', function socketOnError() {
      // A reset or a write after the peer left; 'close' follows and does the bookkeeping.
    })
    send(client, `* welcome, ${client.name}! ${describeOthers(others)}. ${HELP}`)
    broadcast(`* ${client.name} joined`, client)
  }

  /** Splits the byte stream into lines, keeping at most MAX_LINE_BYTES of each. */
  function receive(client: Client, chunk: Buffer): void {
    let start = 0
    while (start < chunk.length && !client.socket.destroyed) {
      const newline = chunk.indexOf(0x0a, start)
      const end = newline === -1 ? chunk.length : newline
      if (!client.skipping) {
        const room = MAX_LINE_BYTES - client.pending.length
        client.pending = Buffer.concat([
          client.pending,
          chunk.subarray(start, start + Math.min(room, end - start)),
        ])
        client.skipping = end - start > room
      }
      if (newline === -1) return
      const line = client.pending.toString('utf8')
      client.pending = Buffer.alloc(0)
      client.skipping = false
      start = newline + 1
      handleLine(client, clean(line))
    }
  }

  function handleLine(client: Client, line: string): void {
    if (line === '') return
    const [command, ...args] = line.split(' ')
    if (command === '/nick') rename(client, args.join(' ').trim())
    else if (command === '/who') send(client, `* online (${clients.size}): ${names().join(', ')}`)
    else if (command?.startsWith('/')) send(client, `* unknown command ${command}; ${HELP}`)
    else broadcast(`${client.name}: ${line}`)
  }

  function rename(client: Client, name: string): void {
    if (!NICK_PATTERN.test(name)) {
      send(client, '* a name is 1-24 letters, digits, "_", "." or "-"')
    } else if (names().includes(name)) {
      send(client, `* ${name} is already taken`)
    } else {
      const old = client.name
      client.name = name
      broadcast(`* ${old} is now ${name}`)
    }
  }

  function names(): string[] {
    return [...clients].map((client) => client.name)
  }

  function broadcast(line: string, except?: Client): void {
    for (const client of clients) if (client !== except) send(client, line)
  }

  function send(client: Client, line: string): void {
    if (client.socket.destroyed) return
    client.socket.write(line + '\n')
    // A reader that does not keep up would make us buffer everything said in the room for it.
    if (client.socket.writableLength > MAX_WRITE_BUFFER_BYTES) client.socket.destroy()
  }

  let closing: Promise<void> | undefined
  return {
    target: { kind: 'tcp', host: '127.0.0.1', port },
    close() {
      closing ??= new Promise<void>((resolveClose) => {
        server.close(() => resolveClose())
        for (const client of clients) client.socket.destroy()
        clients.clear()
      })
      return closing
    },
  }
}

function describeOthers(count: number): string {
  if (count === 0) return 'Nobody else is here yet'
  return count === 1 ? '1 other person is online' : `${count} other people are online`
}

/** Drops a trailing CR and control characters, so nobody can send terminal escapes to `nc` users. */
function clean(line: string): string {
  return (
    line
      .replace(/\r$/, '')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, '')
      .trim()
  )
}
