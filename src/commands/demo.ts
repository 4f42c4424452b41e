/**
 * @module commands/demo
 * `gangway demo`: the embedded chat demo (commands/demo-service.ts) as the target of an ordinary daemon.
 * Knows nothing of the chat protocol (commands/demo-service.ts).
 */
import { parseListen } from '../config/address.js'
import { resolveOptions, type Config } from '../config/options.js'
import { GangwayError } from '../errors.js'
import type { Args, CommandSpec } from './command.js'
import { checkWebRoot, configInput, daemonOptions, positional } from './daemon-config.js'
import { runDaemon } from './daemon.js'

const DEMO_LISTEN = '127.0.0.1:6080'

export const demoCommand: CommandSpec = {
  command: 'demo [LISTEN]',
  describe: `Run the embedded chat demo behind the gateway (LISTEN defaults to ${DEMO_LISTEN}).`,
  builder: (y) => daemonOptions(positional(y, 'LISTEN', 'listen')),
  run: runDemo,
}

async function runDemo(args: Args): Promise<number> {
  const input = await configInput(args, args['LISTEN'], undefined, 1)
  // The demo brings its own target: a config file's `target` is ignored.
  const resolved = resolveOptions(input)
  const { options } = resolved
  const listen = resolved.listen ?? parseListen(DEMO_LISTEN)
  await checkWebRoot(options.webRoot, input)
  const { startDemoService, DEMO_WEB_ROOT } = await import('./demo-service.js')
  const demo = await startDemoService().catch(function demoOnError(err: unknown): never {
    const why = err instanceof Error ? err.message : String(err)
    throw new GangwayError('ERR_LISTEN', `cannot start the demo service: ${why}`, { cause: err })
  })
  const config: Config = Object.freeze({
    ...options,
    listen,
    target: demo.target,
    webRoot: options.webRoot ?? DEMO_WEB_ROOT,
    workers: 1, // one chat room: the demo service lives in this process
  })
  try {
    return await runDaemon(config, {
      afterListen(server, logger) {
        const url = server.url().replace(/^ws/, 'http')
        logger.info(`demo ready: open ${url} in a browser`, { url })
      },
    })
  } finally {
    await demo.close()
  }
}
