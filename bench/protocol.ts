/**
 * @module bench/protocol
 * The few bytes the load client and the target agree on. Every connection starts with a 9-byte header,
 * mode + length, that passes through the relay under test like any payload.
 */
export const HEADER_BYTES = 9
export const CHUNK_BYTES = 64 * 1024

export type Mode =
  /** Client uploads `length` bytes; the target answers one byte when it has them all. */
  | 'u'
  /** The target sends `length` bytes (with backpressure) and keeps the connection open. */
  | 'd'
  /** The target echoes everything after the header. */
  | 'e'
  /** The target holds the connection and does nothing. */
  | 'i'

export function header(mode: Mode, length = 0): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES)
  buf.write(mode, 0, 'latin1')
  buf.writeBigUInt64BE(BigInt(length), 1)
  return buf
}

export function parseHeader(buf: Buffer): { mode: Mode; length: number } {
  return { mode: buf.toString('latin1', 0, 1) as Mode, length: Number(buf.readBigUInt64BE(1)) }
}

/** Messages between the orchestrator and its children (IPC). */
export type ChildMessage =
  | { type: 'listening'; port: number }
  | { type: 'phase'; phase: string; count?: number }
  | { type: 'result'; result: Record<string, number> }
  /** The paired latency scenario: one result per relay, in the job's order. */
  | { type: 'results'; results: Array<Record<string, number>> }
  | { type: 'error'; message: string }
