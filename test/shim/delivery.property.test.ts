/**
 * Issue 14's delivery property in Node (CI scale; GANGWAY_ROBUST=full for more runs): random scenarios of
 * writes of every BufferSource kind (0 B – 4 MiB, buffers reused once a write resolves), interleaved
 * close(), writer.close(), writer.abort(), daemon-side closes and credit stalls, through a real daemon in
 * front of a TCP sink. After a clean end the sink holds exactly the resolved writes; after a failure a
 * prefix of the writes; every write settles, and the ones that did not resolve reject.
 */
import { afterEach, describe, it } from 'vitest'
import fc from 'fast-check'
import { createDisposer } from '../helpers/disposer.js'
import { deliveryRig } from '../helpers/delivery-rig.js'
import { NodeWebSocket } from '../helpers/shim.js'
import { scale } from '../robust/scale.js'
import {
  checkDelivery,
  runScenario,
  scenarios,
  writeBytes,
  type Scenario,
} from '../helpers/delivery.js'
import * as gangway from '../../web/gangway.js'

const d = createDisposer()
afterEach(() => d.run())

describe('shim delivery property (Node)', () => {
  it('sink bytes == resolved writes on a clean end, a prefix on failure; every write settles', async () => {
    await fc.assert(
      fc.asyncProperty(scenarios(12), async (sc: Scenario) => {
        const rig = await deliveryRig(d)
        const played = await runScenario(
          gangway as never,
          { url: rig.url, WebSocket: NodeWebSocket },
          sc,
          rig.hooks,
          writeBytes,
          90_000,
        )
        checkDelivery(sc, played, await rig.received())
      }),
      { numRuns: scale(100, 1000) },
    )
  })
})
