/**
 * @module client/client
 * `gangway client`: native tools through the gateway. A local TCP (or unix) listener whose every connection
 * opens its own tunnel, or one tunnel on stdin/stdout (`--stdio`, for `ssh -o ProxyCommand`). It speaks
 * gangway.v1 through the Node adapter (`web/node`), so backpressure and half-close behave as in the daemon,
 * and it turns every failure into one line that names the close code and what to do.
 * Knows nothing of the daemon's internals: it is a client of the public protocol, like a browser.
 */
import net, { type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { Duplex } from 'node:stream'
import WebSocket from 'ws'
// The library's own Node entry (built from web/node before src/), as any user of the package imports it.
import { connectNet, type TunnelNetSocket } from 'gangway/node'
import { redactUrl } from '../auth/carriers.js'
import type { ListenAddress } from '../config/options.js'
import { logRejection, type Logger } from '../log.js'

export interface ClientOptions {
  /** The daemon's WebSocket URL (ws: or wss:). */
  url: string
  token: string | undefined
  /** Where the token travels: the Authorization header (default), or the `gangway.bearer.` subprotocol. */
  tokenIn: 'header' | 'subprotocol'
  /** A target the daemon should dial (`?address=`), when it allows client-named targets. */
  target: string | undefined
  /** PEM CA bundle to trust for wss:, instead of the system's. */
  ca: Buffer | undefined
  /** TLS server name (SNI and certificate check), when it differs from the URL's host. */
  servername: string | undefined
  /** Skip the certificate check (labs only). */
  insecure: boolean
  /** Extra request headers (`--origin`, `--header`), checked by client/headers.ts; never logged. */
  headers?: Readonly<Record<string, string>> | undefined
}

/**
 * A WebSocket class carrying the client's headers and TLS settings, for the adapter to construct. It
 * reports the socket's own first error (a TLS or DNS failure, an HTTP refusal) to `onError`: the adapter
 * only sees that the connection failed, and the user needs to know why.
 */
function webSocketClass(options: ClientOptions, onError: (err: Error) => void): unknown {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined && options.tokenIn === 'header') {
    headers['Authorization'] = `Bearer ${options.token}`
  }
  return class GangwayClientWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      // `servername` goes to tls.connect (ws passes its options through); @types/ws does not list it.
      const tls = {
        ca: options.ca,
        servername: options.servername,
        rejectUnauthorized: !options.insecure,
      }
      super(url, protocols, { headers, perMessageDeflate: false, ...(tls as object) })
      this.once('error', onError)
    }
  }
}

export interface OpenedTunnel {
  tunnel: TunnelNetSocket
  /** The WebSocket's own error, if it failed before or while opening. */
  socketError(): Error | undefined
}

/** Opens one tunnel, as a connecting `net.Socket`-like Duplex. */
export function openTunnel(options: ClientOptions): OpenedTunnel {
  let socketError: Error | undefined
  const tunnel = connectNet({
    url: options.url,
    token: options.tokenIn === 'subprotocol' ? options.token : undefined,
    address: options.target ?? '',
    allowHalfOpen: true,
    WebSocket: webSocketClass(options, (err) => (socketError ??= err)) as never,
  })
  return { tunnel, socketError: () => socketError }
}

/**
 * `--url` fit for a log line or an error: a password and `token` parameters redacted by the daemon's own
 * query parse (`redactUrl`: `??token=`, encoded names, duplicates), and a fragment, which is never sent
 * and could hold anything, shown as `#[redacted]`.
 */
export function shownUrl(url: string): string {
  let text = url
  let fragment = ''
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = 'redacted'
    if (parsed.hash !== '') {
      parsed.hash = ''
      fragment = '#[redacted]'
    }
    text = parsed.href
  } catch {
    // not a URL: shown as given, minus its tokens; a `#` before any `?` starts a fragment
    const hash = url.indexOf('#')
    const query = url.indexOf('?')
    if (hash !== -1 && (query === -1 || hash < query)) {
      text = url.slice(0, hash)
      fragment = '#[redacted]'
    }
  }
  return (redactUrl(text) ?? text) + fragment
}

const HTTP_REFUSALS: Record<string, number> = {
  '401': 4401,
  '403': 4403,
  '429': 4429,
  '502': 4502,
  '503': 4503,
  '504': 4504,
}

/**
 * What went wrong, in one line a person can act on. `opened`: whether the tunnel was ever up;
 * `socketError`: the WebSocket's own error, which names TLS, DNS and HTTP failures.
 */
export function explain(
  err: unknown,
  options: ClientOptions,
  opened = true,
  socketError?: Error,
): string {
  const e = err as { closeCode?: number; code?: string; message?: string; tunnelCode?: string }
  if (!opened && socketError !== undefined) {
    const status = /Unexpected server response: (\d{3})/.exec(socketError.message)?.[1]
    if (status !== undefined && HTTP_REFUSALS[status] !== undefined) {
      return explain({ closeCode: HTTP_REFUSALS[status] }, options).replace(
        /\((\d{4})\)/,
        `(HTTP ${status})`,
      )
    }
    const code = (socketError as NodeJS.ErrnoException).code
    if (
      /certificate|self[- ]signed|CERT_|unable to verify|altnames/i.test(
        `${code ?? ''} ${socketError.message}`,
      )
    ) {
      return `TLS: ${socketError.message} (trust its CA with --ca FILE, or --insecure in a lab)`
    }
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'ETIMEDOUT'
    ) {
      return `cannot reach the gateway at ${shownUrl(options.url)} (${code})`
    }
  }
  switch (e.closeCode) {
    case 4401:
      return `token rejected (4401): check ${options.token === undefined ? 'that you give --token, --token-file or GANGWAY_TOKEN' : 'the token'}`
    case 4403:
      return options.headers?.['Origin'] === undefined
        ? 'forbidden (4403): the gateway does not allow this target, or wants an Origin (give --origin, one of its allowedOrigins)'
        : `forbidden (4403): the gateway does not allow the origin ${options.headers['Origin']} or this target`
    case 4429:
      return 'too many connections (4429): the gateway or this token is at its limit; try again later'
    case 4502:
      return 'target refused (4502): nothing listens at the target behind the gateway'
    case 4503:
      return 'target unreachable (4503): the gateway cannot reach the target, or its token store is down'
    case 4504:
      return 'target timed out (4504): the target did not answer the gateway in time'
    case 4408:
      return 'idle timeout (4408): no data moved for too long'
    case 1001:
      return 'the gateway is shutting down (1001): reconnect'
    case 1009:
      return 'message too big (1009): the gateway refused a write larger than its limit'
  }
  if (
    !opened &&
    (e.tunnelCode === 'NETWORK' || e.closeCode === undefined || e.closeCode === 1006)
  ) {
    return `cannot reach the gateway at ${shownUrl(options.url)} (is it running, and is the URL right?)`
  }
  const detail = e.message ?? String(err)
  if (/certificate|self[- ]signed|CERT_|unable to verify/i.test(detail)) {
    return `TLS: ${detail} (trust its CA with --ca FILE, or --insecure in a lab)`
  }
  return `tunnel failed: ${detail}`
}

/**
 * Relays one local connection through its own tunnel, both ways, with half-close: an EOF on either side
 * is passed on and the other direction keeps flowing until it ends too.
 */
export function relay(
  local: Duplex,
  tunnel: TunnelNetSocket,
  onError: (err: unknown, opened: boolean) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let failed = false
    let opened = false
    tunnel.once('connect', () => (opened = true))
    const fail = (err: unknown): void => {
      if (failed) return
      failed = true
      onError(err, opened)
      local.destroy()
      tunnel.destroy()
    }
    tunnel.on('error', fail)
    local.on('error', () => tunnel.destroy())
    local.pipe(tunnel)
    tunnel.pipe(local)
    let closed = 0
    const onClose = (): void => {
      if (++closed === 2) resolve()
    }
    // The local side is gone for good (both directions, or destroyed): nothing can take the tunnel's bytes.
    local.once('close', () => tunnel.destroy())
    local.once('close', onClose)
    tunnel.once('close', onClose)
  })
}

export interface ClientListener {
  address(): ListenAddress
  close(): Promise<void>
}

/** Listens on `where`; every accepted connection gets its own tunnel. */
export async function startClientListener(
  where: ListenAddress,
  options: ClientOptions,
  logger: Logger,
): Promise<ClientListener> {
  let lastId = 0
  const sockets = new Set<Socket>()
  const server: Server = net.createServer(
    { allowHalfOpen: true },
    function clientOnConnection(local) {
      const id = ++lastId
      sockets.add(local)
      local.once('close', () => sockets.delete(local))
      const opened = openTunnel(options)
      const tunnel = opened.tunnel
      tunnel.once('connect', () =>
        logger.info('tunnel open', { conn: id, local: local.remoteAddress }),
      )
      const onError = (err: unknown, wasOpen: boolean): void =>
        logger.warn(explain(err, options, wasOpen, opened.socketError()), { conn: id })
      relay(local, tunnel, onError)
        .then(() =>
          logger.info('tunnel closed', {
            conn: id,
            up: tunnel.bytesWritten,
            down: tunnel.bytesRead,
          }),
        )
        .catch(logRejection(logger, 'tunnel failed', { conn: id }))
    },
  )
  if (where.kind === 'unix') server.listen(where.path)
  else server.listen({ host: where.host ?? '127.0.0.1', port: where.port })
  await once(server, 'listening')
  return {
    address() {
      const bound = server.address()
      if (bound === null || typeof bound === 'string') return where
      return { kind: 'tcp', host: bound.address, port: bound.port }
    },
    async close() {
      const closed = once(server, 'close')
      server.close()
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}

/** One tunnel on stdin/stdout; resolves with the exit code (0 clean, 1 failed) after printing why. */
export async function runStdio(
  options: ClientOptions,
  stderr: NodeJS.WritableStream,
): Promise<number> {
  const opened = openTunnel(options)
  const tunnel = opened.tunnel
  let failure: string | undefined
  const stdio = duplexOf(process.stdin, process.stdout)
  await relay(stdio, tunnel, (err, wasOpen) => {
    failure = explain(err, options, wasOpen, opened.socketError())
  })
  // Ended without stdin's EOF (stdout closed, the tunnel failed): stop reading it, or the process lingers.
  process.stdin.destroy()
  if (failure === undefined) return 0
  stderr.write(`gangway client: ${failure}\n`)
  return 1
}

/** stdin and stdout as one Duplex, so `relay` can treat them as a socket. */
function duplexOf(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Duplex {
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      input.resume()
    },
    write(chunk: Buffer, _encoding, callback) {
      if (output.write(chunk)) callback()
      else output.once('drain', () => callback())
    },
    final(callback) {
      output.end()
      callback()
    },
  })
  input.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) input.pause()
  })
  input.on('end', () => duplex.push(null))
  output.on('close', () => duplex.destroy())
  // A reader that went away (`| head`, an ssh that exited): the tunnel ends, quietly, as for a local socket.
  output.on('error', () => duplex.destroy())
  input.on('error', () => duplex.destroy())
  return duplex
}
