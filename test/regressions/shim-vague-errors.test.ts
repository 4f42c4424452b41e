/**
 * Reported in issue 14 (what a page sees): `connect('')` on a `--client-targets` daemon without tokens said
 * `AUTH_FAILED 4401` (there was no token to fail: no target was named); `url: '/'` threw synchronously
 * (`Failed to construct 'URL'`) instead of rejecting `opened`; a token function that threw gave
 * `AUTH_FAILED` with `closeCode 0`; forgetting the `WebSocket` option in Node 20 gave
 * `NETWORK "WS is not a constructor"`. Each now has its own code and a message that says what to do.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { startAccessTunnel } from '../helpers/access.js'
import { createDisposer } from '../helpers/disposer.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectVia } from '../helpers/shim.js'
import { connect, TunnelError, type TunnelSocket } from '../../web/gangway.js'

const d = createDisposer()
afterEach(() => d.run())

async function rejection(p: Promise<unknown>): Promise<TunnelError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TunnelError)
  return err as TunnelError
}

describe('regression: precise errors for a page', () => {
  it("connect('') on a --client-targets daemon says no target was named (4403), not AUTH_FAILED", async () => {
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const gw = await startAccessTunnel(
      d,
      { clientTargets: true, allow: [`127.0.0.1:${echo.port}`] },
      memoryLogger(),
    )
    const err = await rejection(connectVia(d, gw.url).opened)
    expect([err.code, err.closeCode, err.reason]).toEqual([
      'FORBIDDEN',
      4403,
      'no target: name one with ?address=host:port',
    ])
  })

  it("url: '/' outside a page rejects opened with BAD_OPTION instead of throwing", () => {
    let socket: TunnelSocket | undefined
    expect(() => (socket = connect('', { url: '/' }))).not.toThrow()
    return rejection(socket!.opened).then((err) => {
      expect([err.code, err.closeCode]).toEqual(['BAD_OPTION', 0])
      expect(err.reason).toContain("url '/'")
    })
  })

  it('a throwing token function gives TOKEN_ERROR with its message', async () => {
    const err = await rejection(
      connectVia(d, 'ws://127.0.0.1:9/', { token: () => Promise.reject(new Error('no session')) })
        .opened,
    )
    expect([err.code, err.closeCode, err.reason]).toEqual(['TOKEN_ERROR', 0, 'Error: no session'])
  })

  it('no WebSocket class (Node 20 without the option) gives BAD_OPTION naming the option', async () => {
    expect((globalThis as { WebSocket?: unknown }).WebSocket).toBeUndefined()
    const err = await rejection(connect('', { url: 'ws://127.0.0.1:9/' }).opened)
    expect(err.code).toBe('BAD_OPTION')
    expect(err.reason).toMatch(/options\.WebSocket/)
  })
})
