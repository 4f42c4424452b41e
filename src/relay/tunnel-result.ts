/**
 * @module relay/tunnel-result
 * How a tunnel ended: the one record its single teardown path produces, read by the log line, the metrics
 * and the recording. Types only, so every module of the relay (and those above) can name it.
 */

/** Who ended the tunnel. */
export type Initiator = 'client' | 'target' | 'server'

export interface TunnelResult {
  readonly id: number
  /** Close code: sent to the client, or received from it when it closed first (1006: it vanished). */
  readonly code: number
  readonly reason: string
  readonly initiator: Initiator
  /** Bytes written to the target (client → target) and sent to the client (target → client). */
  readonly bytesUp: number
  readonly bytesDown: number
  readonly durationMs: number
  /** errno-style code of the error that ended it, if any (ECONNRESET, WS_ERR_…). */
  readonly error?: string
}
