/**
 * @module commands/replay
 * `gangway replay FILE`: prints a --record session, or re-sends its client side to a target (--to).
 * Knows nothing of the recording format (client/replay.ts).
 */
import { formatAddress, parseTarget } from '../config/address.js'
import { ConfigError } from '../errors.js'
import { EXIT_OK, type Args, type CommandSpec } from './command.js'

export const replayCommand: CommandSpec = {
  command: 'replay <FILE>',
  describe:
    'Print a session recording made with --record, or re-send its client side to a target with --to.',
  builder: (y) =>
    y
      .positional('FILE', {
        type: 'string',
        describe: 'A recording file (one tunnel, JSON Lines).',
      })
      .option('to', {
        type: 'string',
        describe:
          'Re-send the client → target bytes to this host:port or unix:/path instead of printing.',
      })
      .option('speed', {
        type: 'string',
        describe: 'With --to: replay this many times faster than recorded. Default: 1.',
      })
      .option('fast', {
        type: 'boolean',
        describe: 'With --to: send everything at once, no pauses.',
      })
      .option('hex', {
        type: 'boolean',
        describe: 'Show payload previews as hex instead of text.',
      }),
  run: runReplay,
}

async function runReplay(args: Args): Promise<number> {
  const file = String(args['FILE'])
  const { printRecording, resendRecording } = await import('../client/replay.js')
  if (args['to'] === undefined) {
    if (args['speed'] !== undefined || args['fast'] !== undefined) {
      throw new ConfigError('--speed and --fast go with --to')
    }
    await printRecording(file, process.stdout, { hex: args['hex'] === true })
    return EXIT_OK
  }
  const to = args['to']
  if (typeof to !== 'string')
    throw new ConfigError('--to: expected an address (host:port or unix:/path)')
  const target = parseTarget(to, { label: '--to' })
  if (target.kind === 'tcp' && target.tls === true)
    throw new ConfigError('--to: replay sends plain TCP; a tls:// target is not supported')
  let speed = 1
  if (args['fast'] === true) speed = Infinity
  else if (args['speed'] !== undefined) {
    speed = Number(args['speed'])
    if (!(speed > 0) || !Number.isFinite(speed)) {
      throw new ConfigError(
        `--speed: expected a positive number, got ${JSON.stringify(args['speed'])}`,
      )
    }
  }
  const { sent, received } = await resendRecording(file, target, { speed })
  process.stdout.write(`replayed ${sent} B to ${formatAddress(target)}; received ${received} B\n`)
  return EXIT_OK
}
