/**
 * @module relay/control-messages
 * The `gangway.v1` control channel: small JSON messages in WebSocket text frames (binary frames stay raw
 * bytes). Pure functions: encode what the daemon sends, decode and validate what a client sends. The wire
 * format is specified in docs/protocol.md.
 */
import { MAX_CONTROL_MESSAGE_BYTES } from '../protocol.js'

/** Where the daemon's TCP leg is connected (absent fields: a unix socket, or unknown). */
export interface OpenInfo {
  readonly remoteAddress?: string
  readonly remotePort?: number
  readonly localAddress?: string
  readonly localPort?: number
}

/** A message a client may send: end of its byte stream, or more receive window for the daemon. */
export type ClientMessage = { readonly type: 'eof' } | { readonly type: 'credit'; bytes: number }

/** Why a client message was refused (becomes the close reason). */
export class ControlMessageError extends Error {
  override name = 'ControlMessageError'
}

export function encodeOpen(info: OpenInfo): string {
  return JSON.stringify({ type: 'open', ...info })
}

export const EOF_MESSAGE = '{"type":"eof"}'

/** The daemon is draining: it closes this tunnel with 1001 within `ms` unless it ends first. */
export function encodeDrain(ms: number): string {
  return `{"type":"drain","ms":${ms}}`
}

export function encodeCredit(bytes: number): string {
  return `{"type":"credit","bytes":${bytes}}`
}

/** Parses one text frame from a client; throws `ControlMessageError` when it is not a valid message. */
export function decodeClientMessage(data: Buffer): ClientMessage {
  if (data.length > MAX_CONTROL_MESSAGE_BYTES)
    throw new ControlMessageError('control message too long')
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch {
    throw new ControlMessageError('control message is not JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ControlMessageError('control message is not a JSON object')
  const message = value as Record<string, unknown>
  if (message.type === 'eof') return { type: 'eof' }
  if (message.type === 'credit') {
    const bytes = message.bytes
    if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes <= 0)
      throw new ControlMessageError('credit bytes must be a positive integer')
    return { type: 'credit', bytes }
  }
  throw new ControlMessageError('unknown control message type')
}
