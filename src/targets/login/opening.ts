/**
 * @module targets/login/opening
 * The client's side of a login, run on a tunnel that is already relaying: the daemon answers the client's
 * opening exchange itself (a VNC server offering no security, a PostgreSQL server trusting the user), and
 * only then lets bytes through as they are. It does this on the target socket, so the bridge does not
 * change: until the opening is over, what the bridge writes to the target is taken by the opening instead
 * (an own `write` on the socket, removed when done), and what the daemon answers is delivered to the bridge
 * as target bytes. The bridge's counting, credit, backpressure and recording all apply to them as usual.
 */
import type { Socket } from 'node:net'
import { timer } from '../../timer.js'
import type { ClientOpening } from './login.js'

export interface OpeningHooks {
  /** Ends the tunnel (the client asked for what the route does not allow, or took too long). */
  close(code: number, reason: string): void
  /** How long the client may take to finish its opening (0 = no limit). */
  readonly timeoutMs: number
}

/** Close codes of an opening that did not finish (protocol.ts has the same numbers). */
const FORBIDDEN = 4403
const TIMED_OUT = 4408

/**
 * Starts the client's side of the opening on a bridged target socket. `leftover` (target bytes read
 * during the login but not consumed by it) reaches the client after the opening's replies.
 * Call right after the bridge has attached its listeners: the socket is resumed here.
 */
export function startOpening(
  tcp: Socket,
  opening: ClientOpening | undefined,
  leftover: Buffer,
  hooks: OpeningHooks,
): void {
  if (opening === undefined) {
    if (leftover.length > 0) tcp.unshift(leftover)
    tcp.resume()
    return
  }
  const deadline = timer(openingOnTimeout, hooks.timeoutMs)
  let over = false
  // An own property shadows net.Socket.prototype.write; deleting it restores the real one.
  const intercepted: { write: unknown } = tcp
  intercepted.write = openingWrite
  tcp.once('close', openingOnClose)
  deadline.start()
  if (opening.greeting !== undefined) toClient(opening.greeting)
  tcp.resume()

  function openingWrite(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    const done = typeof encoding === 'function' ? encoding : callback
    if (typeof done === 'function') process.nextTick(done)
    if (over) return tcp.write(chunk as Uint8Array) // a write that raced the end: the real one is back
    // A copy: the client's bytes may be a view into a read buffer that is reused, and the opening keeps
    // a partial message until the rest arrives.
    const bytes = Buffer.from(chunk as Uint8Array)
    const step = (opening as ClientOpening).onClientBytes(bytes)
    if (step.kind === 'more') {
      if (step.reply !== undefined) toClient(step.reply)
      return true
    }
    finish()
    if (step.reply !== undefined) toClient(step.reply)
    if (step.kind === 'refuse') {
      hooks.close(FORBIDDEN, step.reason)
      return true
    }
    if (leftover.length > 0) toClient(leftover)
    return step.rest.length === 0 ? true : tcp.write(step.rest)
  }

  function toClient(bytes: Buffer): void {
    // Delivered as target bytes, to the bridge's own listener: counted, credited, recorded, in order.
    if (bytes.length > 0 && !tcp.destroyed) tcp.emit('data', bytes)
  }

  function finish(): void {
    over = true
    deadline.cancel()
    tcp.off('close', openingOnClose)
    delete (intercepted as { write?: unknown }).write
  }

  function openingOnTimeout(): void {
    if (over) return
    finish()
    hooks.close(TIMED_OUT, 'the client did not finish its opening in time')
  }

  function openingOnClose(): void {
    if (!over) finish()
  }
}
