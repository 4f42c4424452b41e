/**
 * A daemon in this process whose reload loads the next config from a function instead of a file (for tests
 * of src/reload.ts).
 */
import type { Access } from '../../src/auth/access.js'
import { createAccessFromConfig, createAccessState } from '../../src/auth/from-config.js'
import type { Config } from '../../src/config/options.js'
import { createReloader, type Reloader } from '../../src/ops/reload.js'
import { createTunnelServer, type TunnelServer } from '../../src/gateway/server.js'
import type { Disposer } from './disposer.js'
import { memoryLogger } from './tunnel.js'

/** A daemon whose SIGHUP would load `next()`; `access` replaces the gate built from `first`. */
export async function startReloadable(
  d: Disposer,
  first: Config,
  next: () => Config,
  wrap: (access: Access) => Access = (a) => a,
): Promise<{
  server: TunnelServer
  reloader: Reloader
  url: string
  logger: ReturnType<typeof memoryLogger>
}> {
  const logger = memoryLogger()
  const state = createAccessState()
  const built = await createAccessFromConfig(first, { logger, state })
  const access = built === undefined ? undefined : wrap(built)
  const server = createTunnelServer(first, { logger, access })
  const reloader = createReloader({
    config: first,
    load: () => Promise.resolve(next()),
    server,
    access,
    state,
    logger,
  })
  await server.listen()
  d.add(async () => {
    await server.close({ drainTimeoutMs: 0 })
    await reloader.close()
  })
  const port = (server.address() as { port: number }).port
  return { server, reloader, url: `ws://127.0.0.1:${port}/`, logger }
}
