/**
 * @module gateway/login
 * Runs a route's login between the dial and the 101 (docs/auth.md, "Logging in for the client"): picks the
 * protocol module, hands it the connected target and the password from the store, bounds it in time, aborts
 * it when the client leaves, logs one line and counts `gangway_logins_total{protocol,result}`. A failure
 * becomes a refusal (4502 `target login failed`, 4504 `target login timed out`) whose log reason is the
 * target's own words with the password struck out should a target ever echo it. Knows nothing of the bytes
 * relayed afterwards.
 */
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { CancelSignal } from '../cancel.js'
import type { LoginSpec } from '../config/login-spec.js'
import type { Target } from '../config/options.js'
import { tunnelError } from '../errors.js'
import type { Logger } from '../log.js'
import { describeTarget } from '../targets/dial.js'
import { LOGIN_MODULES } from '../targets/login/index.js'
import { LoginFailure, type ClientOpening } from '../targets/login/login.js'
import type { PasswordStore } from '../targets/login/passwords.js'
import { createLoginReader } from '../targets/login/reader.js'
import type { MetricsHooks } from './metrics-hooks.js'

/** A finished login: what the tunnel must still do on the client's side. */
export interface LoginSession {
  readonly protocol: string
  readonly opening: ClientOpening | undefined
  /** Target bytes read during the login but not part of it. */
  readonly leftover: Buffer
  /** The time limit of the client's side of the opening. */
  readonly timeoutMs: number
}

export interface LoginRunnerOptions {
  readonly logger: Logger
  readonly metrics: MetricsHooks
  /** The password store in force (a config reload may swap it). */
  passwords(): PasswordStore
}

export interface LoginRequest {
  readonly conn: number
  readonly tcp: Socket
  readonly target: Target
  readonly spec: LoginSpec
  readonly timeoutMs: number
  readonly signal: CancelSignal
}

export type LoginRunner = (request: LoginRequest) => Promise<LoginSession>

export function createLoginRunner(options: LoginRunnerOptions): LoginRunner {
  const { logger, metrics } = options

  return async function runLogin(request: LoginRequest): Promise<LoginSession> {
    const { conn, tcp, spec, signal } = request
    const protocol = spec.protocol
    const targetText = describeTarget(request.target)
    const password = options.passwords().password(spec.passwordFile)
    if (password === undefined) {
      metrics.loggedIn(protocol, 'error')
      tcp.destroy()
      throw tunnelError(
        'ERR_TARGET_LOGIN',
        `${protocol} login: no password loaded from ${spec.passwordFile}`,
      )
    }
    const startedAt = performance.now()
    const reader = createLoginReader(tcp)
    let timedOut = false
    const deadline = setTimeout(function loginOnTimeout() {
      timedOut = true
      tcp.destroy()
    }, request.timeoutMs)
    const loginOnAbort = (): void => void tcp.destroy()
    signal.addEventListener('abort', loginOnAbort)
    try {
      const outcome = await LOGIN_MODULES[protocol].login({ socket: tcp, reader, spec, password })
      const leftover = reader.release()
      metrics.loggedIn(protocol, 'ok')
      logger.info('logged in to the target', {
        conn,
        protocol,
        target: targetText,
        user: spec.user,
        ms: Math.round(performance.now() - startedAt),
        ...outcome.details,
      })
      return { protocol, opening: outcome.opening, leftover, timeoutMs: request.timeoutMs }
    } catch (err) {
      reader.release()
      tcp.destroy()
      if (signal.aborted) throw signal.reason
      const result = timedOut
        ? 'timeout'
        : err instanceof LoginFailure && err.kind === 'refused'
          ? 'refused'
          : 'error'
      metrics.loggedIn(protocol, result)
      if (timedOut) {
        throw tunnelError(
          'ERR_LOGIN_TIMEOUT',
          `${protocol} login to ${targetText} timed out after ${request.timeoutMs} ms`,
        )
      }
      const why = strike(err instanceof Error ? err.message : String(err), password)
      throw tunnelError('ERR_TARGET_LOGIN', `${protocol} login to ${targetText} failed: ${why}`)
    } finally {
      clearTimeout(deadline)
      signal.removeEventListener('abort', loginOnAbort)
    }
  }
}

/** The text with every occurrence of the password replaced: a target's message must never carry it on. */
function strike(text: string, password: Buffer): string {
  const secret = password.toString('utf8')
  return secret.length === 0 ? text : text.split(secret).join('[redacted]')
}
