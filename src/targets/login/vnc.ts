/**
 * @module targets/login/vnc
 * Logs in to a VNC server (RFB 3.3, 3.7, 3.8; RFC 6143) before the tunnel opens: reads its version, answers
 * with the same one (3.3 for 3.4–3.6, 3.8 above), picks VNC Authentication (or None when that is all it
 * needs) from its security types, answers the DES challenge with the configured password and reads the
 * SecurityResult (with the server's reason in 3.8). The client is then shown the server's own version line
 * and a server offering security type None; whichever of 3.3, 3.7 or 3.8 it answers, the messages after
 * security (ClientInit, ServerInit, …) are the same, so they are relayed as they are.
 */
import { vncResponse } from './des.js'
import { LoginFailure, type ClientOpening, type LoginModule, type OpeningStep } from './login.js'
import type { LoginReader } from './reader.js'

const VERSION_BYTES = 12
const VERSION_LINE = /^RFB (\d{3})\.(\d{3})\n$/
/** RFC 6143 7.1.2 security types. */
const SECURITY_NONE = 1
const SECURITY_VNC_AUTH = 2
const SECURITY_NAMES: Record<number, string> = {
  1: 'None',
  2: 'VncAuth',
  5: 'RA2',
  6: 'RA2ne',
  16: 'Tight',
  18: 'TLS',
  19: 'VeNCrypt',
  22: 'XVP',
  30: 'AppleARD',
}
/** A failure reason longer than this is not a reason. */
const MAX_REASON_BYTES = 4096

type Minor = 3 | 7 | 8

export const vncLogin: LoginModule = {
  protocol: 'vnc',
  async login({ socket, reader, password }) {
    const line = await reader.read(VERSION_BYTES)
    const parsed = VERSION_LINE.exec(line.toString('latin1'))
    if (parsed === null) throw new LoginFailure('protocol', 'vnc: the target is not an RFB server')
    const minor = speak(Number(parsed[1]), Number(parsed[2]))
    if (minor === undefined) {
      throw new LoginFailure('protocol', `vnc: unsupported RFB version ${printable(line)}`)
    }
    socket.write(`RFB 003.00${minor}\n`, 'latin1')
    let security: number
    if (minor === 3) {
      security = (await reader.read(4)).readUInt32BE(0)
      if (security === 0) throw await refusedWithReason(reader, 'the server refused the connection')
      if (security !== SECURITY_NONE && security !== SECURITY_VNC_AUTH) {
        throw new LoginFailure(
          'protocol',
          `vnc: security type ${nameOf(security)} is not supported`,
        )
      }
    } else {
      const count = (await reader.read(1))[0] as number
      if (count === 0) throw await refusedWithReason(reader, 'the server refused the connection')
      const offered = [...(await reader.read(count))]
      if (offered.includes(SECURITY_VNC_AUTH)) security = SECURITY_VNC_AUTH
      else if (offered.includes(SECURITY_NONE)) security = SECURITY_NONE
      else {
        throw new LoginFailure(
          'protocol',
          `vnc: no supported security type (the server offers ${offered.map(nameOf).join(', ')}; Gangway logs in with VncAuth or None)`,
        )
      }
      socket.write(Buffer.from([security]))
    }
    if (security === SECURITY_VNC_AUTH) {
      const challenge = await reader.read(16)
      socket.write(vncResponse(password, challenge))
    }
    // 3.3 and 3.7 send a SecurityResult only after VncAuth; 3.8 always does, with a reason on failure.
    if (security === SECURITY_VNC_AUTH || minor === 8) {
      const result = (await reader.read(4)).readUInt32BE(0)
      if (result !== 0) {
        if (minor === 8) throw await refusedWithReason(reader, 'authentication failed')
        throw new LoginFailure(
          'refused',
          `vnc: authentication failed${result === 2 ? ' (too many attempts)' : ''}`,
        )
      }
    }
    return {
      opening: clientOpening(line),
      details: { server: printable(line), security: nameOf(security) },
    }
  },
}

/** The RFB minor version Gangway speaks to a server announcing `major.minor` (RFC 6143 7.1.1). */
function speak(major: number, minor: number): Minor | undefined {
  if (major < 3) return undefined
  if (major > 3 || minor >= 8) return 8
  return minor === 7 ? 7 : 3
}

/** A failure whose reason the server sends as a length-prefixed string (3.8 results, refusals). */
async function refusedWithReason(reader: LoginReader, what: string): Promise<LoginFailure> {
  const length = (await reader.read(4)).readUInt32BE(0)
  if (length > MAX_REASON_BYTES)
    return new LoginFailure('protocol', `vnc: ${what} (reason too long)`)
  const reason = (await reader.read(length)).toString('utf8')
  return new LoginFailure('refused', `vnc: ${what}: ${JSON.stringify(reason)}`)
}

/**
 * The server as the client sees it: the server's own version line, then security type None in the form
 * the client's version expects.
 */
export function clientOpening(serverVersion: Buffer): ClientOpening {
  let held: Buffer = Buffer.alloc(0)
  let minor: Minor | undefined
  return {
    greeting: serverVersion,
    onClientBytes(chunk: Buffer): OpeningStep {
      held = held.length === 0 ? chunk : Buffer.concat([held, chunk])
      if (minor === undefined) {
        if (held.length < VERSION_BYTES) return { kind: 'more' }
        const parsed = VERSION_LINE.exec(held.subarray(0, VERSION_BYTES).toString('latin1'))
        const spoken = parsed === null ? undefined : speak(Number(parsed[1]), Number(parsed[2]))
        if (spoken === undefined)
          return { kind: 'refuse', reason: 'the client is not an RFB client' }
        minor = spoken
        held = held.subarray(VERSION_BYTES)
        if (minor === 3) return { kind: 'done', reply: u32(SECURITY_NONE), rest: held }
        const offer = Buffer.from([1, SECURITY_NONE])
        if (held.length === 0) return { kind: 'more', reply: offer }
        return withReplyFirst(offer, chosen())
      }
      if (held.length === 0) return { kind: 'more' }
      return chosen()
    },
  }

  /** The client's choice of security type (3.7, 3.8): it must be None; 3.8 then gets an OK result. */
  function chosen(): OpeningStep {
    if (held[0] !== SECURITY_NONE) {
      return { kind: 'refuse', reason: 'the client chose a security type that was not offered' }
    }
    const rest = held.subarray(1)
    return minor === 8 ? { kind: 'done', reply: u32(0), rest } : { kind: 'done', rest }
  }
}

/** `step`, with `first` sent before its own reply. */
function withReplyFirst(first: Buffer, step: OpeningStep): OpeningStep {
  const reply = step.reply === undefined ? first : Buffer.concat([first, step.reply])
  return { ...step, reply }
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

function nameOf(type: number): string {
  return SECURITY_NAMES[type] ?? String(type)
}

function printable(line: Buffer): string {
  return line
    .toString('latin1')
    .replace(/[^\x20-\x7e]/g, '')
    .trim()
}
