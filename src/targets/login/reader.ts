/**
 * @module targets/login/reader
 * Reads a target's answers during a login: exact byte counts and lines, from a socket in paused mode,
 * bounded in what it holds. `release()` hands the socket back paused with every byte not yet consumed
 * (a target that speaks first after the login) returned to the caller, so no byte is lost to the relay.
 */
import type { Socket } from 'node:net'

/** A target that sends more than this unasked during a login is not speaking the protocol. */
export const MAX_LOGIN_BUFFER_BYTES = 256 * 1024

export interface LoginReader {
  /** Exactly `n` bytes. */
  read(n: number): Promise<Buffer>
  /** Bytes up to and including the first `delimiter`, at most `max` bytes in all. */
  readUntil(delimiter: number, max: number): Promise<Buffer>
  /** Stops reading; returns the bytes read but not consumed. The socket stays paused. */
  release(): Buffer
}

export class TargetClosedError extends Error {
  override name = 'TargetClosedError'
}

export function createLoginReader(socket: Socket): LoginReader {
  let buffered: Buffer = Buffer.alloc(0)
  let failure: Error | undefined
  let waiter: (() => void) | undefined
  socket.on('data', socketOnLoginData)
  socket.on('end', socketOnLoginEnd)
  socket.on('close', socketOnLoginEnd)
  socket.on('error', socketOnLoginError)

  function socketOnLoginData(chunk: Buffer): void {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    if (buffered.length > MAX_LOGIN_BUFFER_BYTES) {
      failure ??= new Error(`the target sent more than ${MAX_LOGIN_BUFFER_BYTES} bytes unasked`)
      socket.destroy()
    }
    wake()
  }
  function socketOnLoginEnd(): void {
    failure ??= new TargetClosedError('the target closed the connection during the login')
    wake()
  }
  function socketOnLoginError(err: NodeJS.ErrnoException): void {
    failure ??= new TargetClosedError(
      `the target connection failed during the login (${err.code ?? err.message})`,
    )
    wake()
  }
  function wake(): void {
    const w = waiter
    waiter = undefined
    w?.()
  }

  async function until(ready: () => number | undefined): Promise<Buffer> {
    for (;;) {
      const n = ready()
      if (n !== undefined) {
        const out = buffered.subarray(0, n)
        buffered = buffered.subarray(n)
        return out
      }
      if (failure !== undefined) throw failure
      await new Promise<void>((resolve) => (waiter = resolve))
    }
  }

  return {
    read(n) {
      return until(() => (buffered.length >= n ? n : undefined))
    },
    readUntil(delimiter, max) {
      return until(() => {
        const at = buffered.indexOf(delimiter)
        if (at !== -1 && at < max) return at + 1
        if (at !== -1 || buffered.length >= max) {
          failure ??= new Error(`no line end within ${max} bytes`)
        }
        return undefined
      })
    },
    release() {
      socket.off('data', socketOnLoginData)
      socket.off('end', socketOnLoginEnd)
      socket.off('close', socketOnLoginEnd)
      socket.off('error', socketOnLoginError)
      socket.pause()
      const rest = buffered
      buffered = Buffer.alloc(0)
      return rest
    },
  }
}
