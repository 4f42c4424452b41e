/**
 * @module targets/login/login
 * The one small interface every login protocol implements (docs/auth.md, "Logging in for the client"): a
 * connected target socket and the route's credentials in; the target authenticated, and what the client
 * must still be told, out. A protocol module talks to the target only through a `LoginReader` and
 * `socket.write`, owns no timer (the caller bounds it and destroys the socket on timeout or abort) and never
 * puts a credential into an error message, a detail or a client reply.
 */
import type { Socket } from 'node:net'
import type { LoginProtocol, LoginSpec } from '../../config/login-spec.js'
import type { LoginReader } from './reader.js'

export type { LoginProtocol, LoginSpec }

export interface LoginInput {
  /** The connected target, in paused mode; reads go through `reader`. */
  readonly socket: Socket
  readonly reader: LoginReader
  readonly spec: LoginSpec
  /** The password from the route's `passwordFile`. Never logged, never sent to the client. */
  readonly password: Buffer
}

/**
 * What the client must be told once the tunnel is open, before bytes are relayed as they are: the
 * target's side of its opening exchange, answered by the daemon as a target that needs no password would.
 */
export interface ClientOpening {
  /** Sent to the client as soon as the tunnel opens, before it says anything (VNC's version line). */
  readonly greeting: Buffer | undefined
  /** Takes the client's bytes until the opening is over. */
  onClientBytes(chunk: Buffer): OpeningStep
}

export type OpeningStep =
  /** Keep reading the client; `reply` (if any) is sent to it now. */
  | { readonly kind: 'more'; readonly reply?: Buffer }
  /** The opening is over: `reply` goes to the client, `rest` (bytes the client sent after it) to the target. */
  | { readonly kind: 'done'; readonly reply?: Buffer; readonly rest: Buffer }
  /** The client asked for something this route does not allow: `reply` (an error in the protocol's words), then close. */
  | { readonly kind: 'refuse'; readonly reply?: Buffer; readonly reason: string }

export interface LoginOutcome {
  /** The client's side of the opening, or undefined when the relay can start at once (redis). */
  readonly opening: ClientOpening | undefined
  /** Facts for the log line (server version, security type, auth method); never a secret. */
  readonly details: Readonly<Record<string, string | number>>
}

/** Why a login failed: `reason` is for the log (the target's own words); the client gets a short text. */
export class LoginFailure extends Error {
  override name = 'LoginFailure'
  /** `refused`: the target said no (wrong password, unknown user); `protocol`: it did not speak the protocol. */
  readonly kind: 'refused' | 'protocol'
  constructor(kind: 'refused' | 'protocol', message: string) {
    super(message)
    this.kind = kind
  }
}

export interface LoginModule {
  readonly protocol: LoginProtocol
  /**
   * Runs the target's opening exchange with the configured credentials. Rejects with a `LoginFailure`, or
   * with the reader's error when the target closes or the caller destroys the socket.
   */
  login(input: LoginInput): Promise<LoginOutcome>
}
