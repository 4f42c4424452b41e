/**
 * @module events
 * diagnostics_channel channels for embedders, metrics and tests. Publishing costs nothing when no one
 * subscribes; nothing here is on the per-chunk path except backpressure transitions.
 * Imports nothing of Gangway: every layer may publish.
 */
import diagnostics from 'node:diagnostics_channel'

/** `{ id, direction: 'up' | 'down', paused }` each time a tunnel starts or stops applying backpressure. */
export const backpressureChannel = diagnostics.channel('gangway:tunnel:backpressure')
/** `{ id, client, target }` when a tunnel opens (TCP connected, upgrade completed). */
export const openChannel = diagnostics.channel('gangway:tunnel:open')
/** The `TunnelResult` when a tunnel has fully closed. */
export const closeChannel = diagnostics.channel('gangway:tunnel:close')
/** `{ client, code, reason, status }` when an upgrade is refused or its dial fails. */
export const refuseChannel = diagnostics.channel('gangway:tunnel:refuse')

export interface BackpressureEvent {
  id: number
  direction: 'up' | 'down'
  paused: boolean
}

export function publishBackpressure(id: number, direction: 'up' | 'down', paused: boolean): void {
  if (backpressureChannel.hasSubscribers) backpressureChannel.publish({ id, direction, paused })
}
