/**
 * WebSocket client helpers (ws's class, as a browser would behave minus the DOM).
 */
import { once } from 'node:events'
import WebSocket from 'ws'
import type { Disposer } from './disposer.js'

export async function openWs(
  disposer: Disposer,
  url: string,
  options: WebSocket.ClientOptions & {
    protocols?: string | string[]
    /**
     * Called before the handshake completes: listen here for a target that speaks first. Its first bytes
     * can arrive with the 101, and ws emits them before a caller awaiting `open` can add a listener.
     */
    beforeOpen?: (ws: WebSocket) => void
  } = {},
): Promise<WebSocket> {
  const { protocols, beforeOpen, ...rest } = options
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...rest })
  beforeOpen?.(ws)
  disposer.add(() => ws.terminate())
  ws.on('error', () => {})
  await once(ws, 'open')
  return ws
}

/** Resolves with the close code and reason. */
export async function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed: listen before it closes')
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  return { code, reason: reason.toString() }
}

/** Connects and waits for the close (for refusals that complete the upgrade, then close). */
export async function connectAndClose(
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<{ opened: boolean; code: number; reason: string }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options })
  let opened = false
  ws.on('open', () => (opened = true))
  ws.on('error', () => {})
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
  return { opened, code, reason: reason.toString() }
}
