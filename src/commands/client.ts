/**
 * @module commands/client
 * `gangway client`: native tools through the gateway, from a local listener (--listen) or stdin/stdout
 * (--stdio). Reads and checks the options; the tunnelling itself is client/client.ts.
 * Knows nothing of the tunnelling itself.
 */
import { readFile } from 'node:fs/promises'
import { formatAddress, parseLoopbackListen, parseTarget } from '../config/address.js'
import type { LogFormat, LogLevel } from '../config/options.js'
import { ConfigError, GangwayError } from '../errors.js'
import { createLogger } from '../log.js'
import { headerFileLines, headerNames, parseExtraHeaders } from '../client/headers.js'
import { EXIT_OK, readTokenFile, stringOption, type Args, type CommandSpec } from './command.js'
import { watchStopSignals } from './signals.js'

export const clientCommand: CommandSpec = {
  command: 'client',
  describe:
    'Native tools through the gateway: a local listener (--listen) or stdin/stdout (--stdio) tunnelled to --url.',
  builder: (y) =>
    y
      .option('url', {
        type: 'string',
        describe: 'The daemon: ws://host:port/ or wss://host/path.',
      })
      .option('listen', {
        type: 'string',
        describe:
          'Local address to listen on: [host:]port (a bare port is loopback only) or unix:/path.',
      })
      .option('stdio', {
        type: 'boolean',
        describe: 'One tunnel on stdin/stdout (ssh ProxyCommand).',
      })
      .option('token', {
        type: 'string',
        describe: 'Token (visible in ps: prefer --token-file or GANGWAY_TOKEN).',
      })
      .option('token-file', { type: 'string', describe: 'File whose first line is the token.' })
      .option('token-in', {
        type: 'string',
        describe: 'Where the token travels: header (Authorization, default) or subprotocol.',
      })
      .option('target', {
        type: 'string',
        describe: 'host:port for the daemon to dial, if it allows client-named targets.',
      })
      .option('ca', {
        type: 'string',
        describe: 'PEM CA bundle to trust for wss: (instead of the system store).',
      })
      .option('servername', {
        type: 'string',
        describe: 'TLS server name, when it differs from the URL host.',
      })
      .option('origin', {
        type: 'string',
        describe:
          'Origin header to send, for a gateway with allowedOrigins: one of them, e.g. https://app.example.com.',
      })
      .option('header', {
        type: 'string',
        describe:
          'Extra request header NAME:VALUE (repeatable), e.g. for a proxy in front of the gateway; @FILE reads one per line. Logs show names only.',
      })
      .option('insecure', {
        type: 'boolean',
        describe: 'Do not check the gateway certificate (labs only).',
      })
      .option('log-level', {
        type: 'string',
        describe: 'debug, info, warn, error or silent. Default: info.',
      })
      .option('log-format', { type: 'string', describe: 'auto, json or pretty. Default: auto.' }),
  run: runClient,
}

/** The `--header` values (once or repeated), each `@FILE` replaced by its lines, with a label for errors. */
async function headerArgs(given: unknown): Promise<{ text: string; label: string }[]> {
  if (given === undefined) return []
  const values = Array.isArray(given) ? (given as unknown[]) : [given]
  const out: { text: string; label: string }[] = []
  for (const [index, value] of values.entries()) {
    if (typeof value !== 'string' || value === '')
      throw new ConfigError('--header: expected a value')
    if (!value.startsWith('@')) {
      out.push({ text: value, label: `--header #${index + 1}` })
      continue
    }
    const file = value.slice(1)
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ConfigError(`--header @${file}: cannot read it (${err.code ?? err.message})`)
    })
    for (const [n, line] of headerFileLines(text).entries()) {
      out.push({ text: line, label: `--header @${file} (header ${n + 1})` })
    }
  }
  return out
}

async function runClient(args: Args): Promise<number> {
  const { runStdio, shownUrl, startClientListener } = await import('../client/client.js')
  const text = (name: string): string | undefined => stringOption(args, name)
  const url = text('url')
  if (url === undefined) throw new ConfigError('client: --url is required (ws://… or wss://…)')
  if (!/^wss?:\/\/[^/]/.test(url))
    throw new ConfigError(`--url: expected ws://… or wss://…, got ${JSON.stringify(shownUrl(url))}`)
  const stdio = args['stdio'] === true
  const listenText = text('listen')
  if (stdio === (listenText !== undefined))
    throw new ConfigError('client: give exactly one of --listen and --stdio')
  const tokenInText = text('token-in') ?? 'header'
  if (tokenInText !== 'header' && tokenInText !== 'subprotocol') {
    throw new ConfigError(
      `--token-in: expected header or subprotocol, got ${JSON.stringify(tokenInText)}`,
    )
  }
  const tokenIn: 'header' | 'subprotocol' = tokenInText
  let token = text('token')
  const tokenFile = text('token-file')
  if (token === undefined && tokenFile !== undefined) {
    token = await readTokenFile(tokenFile)
  }
  token ??= process.env['GANGWAY_TOKEN'] || undefined
  const caFile = text('ca')
  const ca =
    caFile === undefined
      ? undefined
      : await readFile(caFile).catch((err: NodeJS.ErrnoException) => {
          throw new ConfigError(`--ca: cannot read ${caFile} (${err.code ?? err.message})`)
        })
  const target = text('target')
  if (target !== undefined) parseTarget(target, { label: '--target' })
  const extra = parseExtraHeaders({
    origin: text('origin'),
    headers: await headerArgs(args['header']),
    tokenInAuthorization: token !== undefined && tokenIn === 'header',
  })
  const options = {
    url,
    token,
    tokenIn,
    target,
    ca,
    servername: text('servername'),
    insecure: args['insecure'] === true,
    headers: extra.headers,
  }
  if (stdio) return runStdio(options, process.stderr)

  const level = text('log-level') ?? 'info'
  const format = text('log-format') ?? 'auto'
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level))
    throw new ConfigError(`--log-level: unknown level ${JSON.stringify(level)}`)
  if (!['auto', 'json', 'pretty'].includes(format))
    throw new ConfigError(`--log-format: unknown format ${JSON.stringify(format)}`)
  const logger = createLogger({ level: level as LogLevel, format: format as LogFormat })
  const where = parseLoopbackListen(listenText!, { label: '--listen' })
  const listener = await startClientListener(where, options, logger).catch(
    (err: NodeJS.ErrnoException) => {
      throw new GangwayError(
        'ERR_LISTEN',
        `cannot listen on ${listenText!} (${err.code ?? err.message})`,
        { cause: err },
      )
    },
  )
  logger.info('client listening', {
    listen: formatAddress(listener.address()),
    url: shownUrl(url), // a token in the URL (websockify's habit) is not logged
    tokenIn,
    origin: extra.origin,
    headers: headerNames(extra), // names only: a value may be a password or a cookie
  })
  const stop = watchStopSignals(logger)
  try {
    await stop.signalled
    await listener.close()
    return EXIT_OK
  } finally {
    stop.dispose()
  }
}
