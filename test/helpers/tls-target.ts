/**
 * A TLS target on loopback for tests of `tls://` targets: Node's tls server with a given certificate,
 * optionally requiring a client certificate, handing each verified connection to the test (echo by
 * default). Handshake failures are counted, not thrown.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import tls, { type TLSSocket } from 'node:tls'

export interface TlsTarget {
  port: number
  /** Connections whose handshake completed, in order. */
  sockets: TLSSocket[]
  /** Node error codes of handshakes that failed on the server's side. */
  failures: string[]
  /** Resolves with the next verified connection (or the one already at index `n`). */
  accepted(n?: number): Promise<TLSSocket>
  close(): Promise<void>
}

export interface TlsTargetOptions {
  cert: string
  key: string
  /** Require a client certificate signed by this CA (PEM). */
  clientCa?: string
  host?: string
  onSocket?: (socket: TLSSocket) => void
}

export async function startTlsTarget(options: TlsTargetOptions): Promise<TlsTarget> {
  const sockets: TLSSocket[] = []
  const failures: string[] = []
  const waiters = new Map<number, (s: TLSSocket) => void>()
  const server = tls.createServer(
    {
      cert: options.cert,
      key: options.key,
      ...(options.clientCa === undefined
        ? {}
        : { ca: options.clientCa, requestCert: true, rejectUnauthorized: true }),
    },
    function tlsTargetOnSecure(socket) {
      socket.on('error', () => {})
      sockets.push(socket)
      ;(options.onSocket ?? ((s: TLSSocket) => s.pipe(s)))(socket)
      waiters.get(sockets.length - 1)?.(socket)
    },
  )
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => failures.push(err.code ?? 'error'))
  server.listen(0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    failures,
    accepted(n = sockets.length) {
      const have = sockets[n]
      if (have) return Promise.resolve(have)
      return new Promise((resolve) => waiters.set(n, resolve))
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
