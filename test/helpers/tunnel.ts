/**
 * Starts an in-process Gangway tunnel server on 127.0.0.1:0 in front of a target, with test-friendly
 * defaults (no heartbeat) and any overrides, and registers its shutdown with the disposer.
 */
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import { DEFAULTS, type Config, type Target } from '../../src/config/options.js'
import type { Logger } from '../../src/log.js'
import type { Disposer } from './disposer.js'
import type { Socket } from 'node:net'
import { startEchoServer, startTcpServer } from './tcp.js'
import { openWs } from './ws.js'

export function tcpTarget(port: number, host = '127.0.0.1'): Target {
  return { kind: 'tcp', host, port }
}

export async function startTunnel(
  disposer: Disposer,
  target: Target,
  overrides: Partial<Config> = {},
  logger?: Logger,
): Promise<TunnelServer> {
  const config: Config = {
    ...DEFAULTS,
    heartbeatMs: 0,
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    target,
    ...overrides,
  }
  const server = createTunnelServer(config, { logger })
  await server.listen()
  disposer.add(() => server.close({ drainTimeoutMs: 0 }))
  return server
}

export interface LogLine {
  level: string
  msg: string
  fields: Record<string, unknown>
}

export interface MemoryLogger extends Logger {
  lines: LogLine[]
  /** Resolves with the first line (already logged or still to come) whose message is `msg`. */
  waitFor(msg: string): Promise<LogLine>
}

/** An echo server behind a tunnel, with a memory logger: the common fixture of relay tests. */
export async function startEchoTunnel(disposer: Disposer, overrides: Partial<Config> = {}) {
  const echo = await startEchoServer()
  disposer.add(() => echo.close())
  const logger = memoryLogger()
  const server = await startTunnel(disposer, tcpTarget(echo.port), overrides, logger)
  return { echo, server, logger }
}

/**
 * A TCP target behind a tunnel, with a memory logger, and one client connected through it: `ws` is the
 * client, `socket` the target's side of that tunnel (`onSocket` sees it first, e.g. to pause it).
 */
export async function connectThroughTunnel(
  disposer: Disposer,
  onSocket?: (socket: Socket) => void,
) {
  const target = await startTcpServer(onSocket)
  disposer.add(() => target.close())
  const logger = memoryLogger()
  const server = await startTunnel(disposer, tcpTarget(target.port), {}, logger)
  const ws = await openWs(disposer, server.url())
  const socket = await target.accepted(0)
  return { target, logger, server, ws, socket }
}

/** A Logger that keeps every line, for assertions on what was logged and to wait for a line. */
export function memoryLogger(): MemoryLogger {
  const lines: LogLine[] = []
  const waiters: Array<{ msg: string; wake: (line: LogLine) => void }> = []
  const at =
    (level: string) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      const line = { level, msg, fields }
      lines.push(line)
      for (const w of waiters.filter((w) => w.msg === msg)) {
        waiters.splice(waiters.indexOf(w), 1)
        w.wake(line)
      }
    }
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    waitFor(msg) {
      const have = lines.find((l) => l.msg === msg)
      if (have) return Promise.resolve(have)
      return new Promise((wake) => waiters.push({ msg, wake }))
    },
  }
}
