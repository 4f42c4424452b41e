/**
 * A TLS target on loopback for tests of `tls://` targets: Node's tls server with a given certificate,
 * optionally requiring a client certificate, handing each verified connection to the test (echo by
 * default). Handshake failures are counted, not thrown.
 */
import tls, { type TLSSocket } from 'node:tls'
import { acceptedList, listenLoopback } from './tcp.js'

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
  const list = acceptedList<TLSSocket>()
  const failures: string[] = []
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
      list.add(socket, options.onSocket ?? ((s: TLSSocket) => s.pipe(s)))
    },
  )
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => failures.push(err.code ?? 'error'))
  const listening = await listenLoopback(server, options.host ?? '127.0.0.1', list.sockets)
  return { ...list, ...listening, failures }
}
