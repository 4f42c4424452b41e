/**
 * Raw HTTP over `net`, for requests no well-behaved client would send (slow, oversized, malformed).
 */
import net from 'node:net'
import { once } from 'node:events'

/** Sends `request` (written as is) and resolves with everything received until the server closes. */
export async function rawRequest(port: number, request: string | Buffer): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  socket.write(request)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

export function upgradeRequest(headers: Record<string, string> = {}, path = '/'): string {
  const all: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  }
  const lines = Object.entries(all)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}`)
  return `GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`
}
