import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { locateJsonError, parseConfigText, readConfigFile } from '../../src/config/config-file.js'
import {
  DEFAULTS,
  MAX_SECONDS,
  OPTIONS,
  parseBoolean,
  parseBytes,
  parseChoice,
  parseCount,
  parseMode,
  parseOptionValue,
  parseSeconds,
  resolveConfig,
  resolveOptions,
  type Config,
} from '../../src/config/options.js'
import { ConfigError } from '../../src/errors.js'

function messageOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return (err as Error).message
  }
  throw new Error('expected a ConfigError')
}

async function rejectionOf(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ConfigError)
  return (err as Error).message
}

describe('OPTIONS', () => {
  it('lists options alphabetically by flag, each flag the kebab-case form of its key', () => {
    const flags = OPTIONS.map((spec) => spec.flag)
    expect(flags).toEqual([...flags].sort())
    for (const spec of OPTIONS) {
      expect(spec.flag).toBe(spec.key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))
    }
  })

  it('maps every Config field but the positionals exactly once', () => {
    const fields = OPTIONS.map((spec) => spec.field).sort()
    expect(fields).toEqual(Object.keys(DEFAULTS).sort())
  })

  it.each(OPTIONS.map((spec) => [spec.flag, spec] as const))(
    'documents a default for --%s that parses to DEFAULTS',
    (_flag, spec) => {
      const parsed =
        spec.default === undefined ? undefined : parseOptionValue(spec.kind, spec.default)
      expect(parsed).toBe(DEFAULTS[spec.field])
    },
  )
})

describe('parseSeconds', () => {
  it.each([
    ['0', 0],
    ['10', 10_000],
    ['0.25', 250],
    ['.5', 500],
    ['1.', 1000],
    ['0.0001', 1],
    [1.5, 1500],
    [0, 0],
    [String(MAX_SECONDS), MAX_SECONDS * 1000],
  ])('reads %j as %d ms', (value, ms) => {
    expect(parseSeconds(value)).toBe(ms)
  })

  it.each([
    ['abc', 'expected seconds (a non-negative number), got "abc"'],
    ['', 'expected seconds (a non-negative number), got ""'],
    ['-1', 'expected seconds (a non-negative number), got "-1"'],
    ['1s', 'expected seconds (a non-negative number), got "1s"'],
    [' 1', 'expected seconds (a non-negative number), got " 1"'],
    [-1, 'expected seconds (a non-negative number), got -1'],
    [true, 'expected seconds (a non-negative number), got true'],
    [null, 'expected seconds (a non-negative number), got null'],
    [[1], 'expected seconds (a non-negative number), got [1]'],
    [Infinity, 'expected seconds (a non-negative number), got null'],
    [
      MAX_SECONDS + 1,
      `expected at most ${MAX_SECONDS} seconds (about 24 days), got ${MAX_SECONDS + 1}`,
    ],
  ])('refuses %j', (value, message) => {
    expect(messageOf(() => parseSeconds(value))).toBe(message)
  })
})

describe('parseBytes', () => {
  it.each([
    ['1048576', 1048576],
    ['1MiB', 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['512kib', 512 * 1024],
    ['2GiB', 2 * 1024 ** 3],
    ['4mb', 4_000_000],
    ['4MB', 4_000_000],
    ['2k', 2000],
    ['2kB', 2000],
    ['3m', 3_000_000],
    ['1g', 1e9],
    ['100b', 100],
    ['1 MiB', 1024 * 1024],
    [65536, 65536],
  ])('reads %j as %d', (value, bytes) => {
    expect(parseBytes(value)).toBe(bytes)
  })

  const expected = 'expected a positive size in bytes (e.g. 65536, 512KiB, 1MiB, 4mb)'
  it.each([
    ['0', `${expected}, got "0"`],
    ['0KiB', `${expected}, got "0KiB"`],
    ['1.5MiB', `${expected}, got "1.5MiB"`],
    ['1XB', `${expected}, got "1XB"`],
    ['MiB', `${expected}, got "MiB"`],
    ['-5', `${expected}, got "-5"`],
    ['', `${expected}, got ""`],
    [1.5, `${expected}, got 1.5`],
    [0, `${expected}, got 0`],
    ['99999999999GiB', `${expected}, got "99999999999GiB"`],
    [false, `${expected}, got false`],
  ])('refuses %j', (value, message) => {
    expect(messageOf(() => parseBytes(value))).toBe(message)
  })
})

describe('parseCount', () => {
  it.each([
    ['0', 0],
    ['10000', 10000],
    [7, 7],
  ])('reads %j as %d', (value, count) => {
    expect(parseCount(value)).toBe(count)
  })

  it.each(['-1', '1.5', 'ten', '', -1, 2.5, '1e3'])('refuses %j', (value) => {
    expect(messageOf(() => parseCount(value))).toBe(
      `expected a count (a non-negative integer), got ${JSON.stringify(value)}`,
    )
  })
})

describe('parseMode', () => {
  it.each([
    ['600', 0o600],
    ['0600', 0o600],
    ['0660', 0o660],
    ['0o660', 0o660],
    ['777', 0o777],
    ['0', 0],
    [600, 0o600],
    [660, 0o660],
  ])('reads %j as octal', (value, mode) => {
    expect(parseMode(value)).toBe(mode)
  })

  it.each(['800', '1777', 'rw', '', '0x1ff', 384, -600])('refuses %j', (value) => {
    expect(messageOf(() => parseMode(value))).toBe(
      `expected octal permission bits (e.g. 600 or 0660), got ${JSON.stringify(value)}`,
    )
  })
})

describe('parseBoolean and parseChoice', () => {
  it('reads booleans and their string forms', () => {
    expect(parseBoolean(true)).toBe(true)
    expect(parseBoolean('true')).toBe(true)
    expect(parseBoolean(false)).toBe(false)
    expect(parseBoolean('false')).toBe(false)
  })

  it.each(['yes', '1', 1, null, 'TRUE'])('refuses %j as a boolean', (value) => {
    expect(messageOf(() => parseBoolean(value))).toBe(
      `expected true or false, got ${JSON.stringify(value)}`,
    )
  })

  it('reads a choice, case-sensitively', () => {
    expect(parseChoice(['auto', 'json'], 'json')).toBe('json')
    expect(messageOf(() => parseChoice(['auto', 'json'], 'JSON'))).toBe(
      'expected one of auto, json, got "JSON"',
    )
  })

  it('resolves paths against cwd and refuses empty ones', () => {
    expect(parseOptionValue('path', 'www', '/srv')).toBe('/srv/www')
    expect(parseOptionValue('path', '/abs/www', '/srv')).toBe('/abs/www')
    expect(messageOf(() => parseOptionValue('path', '', '/srv'))).toBe(
      'expected a path (a non-empty string), got ""',
    )
    expect(messageOf(() => parseOptionValue('path', 3, '/srv'))).toBe(
      'expected a path (a non-empty string), got 3',
    )
  })

  it('cuts long values short in messages', () => {
    const message = messageOf(() => parseSeconds('x'.repeat(200)))
    expect(message).toBe(`expected seconds (a non-negative number), got "${'x'.repeat(56)}...`)
  })
})

describe('resolveConfig', () => {
  const base = { flags: {}, listen: '127.0.0.1:0', target: 'localhost:5900', cwd: '/srv' }

  it('returns the defaults plus the positionals, frozen, with exactly the Config fields', () => {
    const config = resolveConfig(base)
    const expected: Config = {
      listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
      target: { kind: 'tcp', host: 'localhost', port: 5900 },
      ...DEFAULTS,
    }
    expect(config).toStrictEqual(expected)
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.listen)).toBe(true)
    expect(Object.isFrozen(config.target)).toBe(true)
  })

  it('converts every kind of flag into its Config field', () => {
    const config = resolveConfig({
      ...base,
      flags: {
        compress: true,
        connectTimeout: '2.5',
        drainTimeout: '0.5',
        handshakeTimeout: '3',
        heartbeat: '0',
        highWaterMark: '64KiB',
        tunnelIdleTimeout: '60',
        idleExit: '30',
        listenMode: '0660',
        logFormat: 'json',
        logLevel: 'warn',
        maxConnections: '5',
        maxHeaderSize: '8k',
        maxMessageSize: '1MiB',
        refuseWith: 'http',
        text: 'reject',
        web: 'public',
      },
    })
    expect(config).toMatchObject({
      compress: true,
      connectTimeoutMs: 2500,
      drainTimeoutMs: 500,
      handshakeTimeoutMs: 3000,
      heartbeatMs: 0,
      highWaterMarkBytes: 65536,
      idleTimeoutMs: 60_000,
      idleExitMs: 30_000,
      listenMode: 0o660,
      logFormat: 'json',
      logLevel: 'warn',
      maxConnections: 5,
      maxHeaderBytes: 8000,
      maxMessageBytes: 1024 * 1024,
      refuseWith: 'http',
      textPolicy: 'reject',
      webRoot: '/srv/public',
    })
  })

  it("reads a 0.1 file's idleTimeout as tunnelIdleTimeout, with a warning; both keys is an error", () => {
    const old = resolveConfig({ ...base, file: { idleTimeout: 600 }, fileName: 'g.yaml' })
    expect(old).toMatchObject({ idleTimeoutMs: 600_000, idleExitMs: 0 })
    expect(old.warnings).toEqual([
      'config g.yaml: idleTimeout is now called tunnelIdleTimeout (the per-tunnel idle close); rename it',
    ])
    expect(resolveConfig({ ...base, flags: { tunnelIdleTimeout: '5' } }).warnings).toBeUndefined()
    expect(() =>
      resolveConfig({
        ...base,
        file: { idleTimeout: 1, tunnelIdleTimeout: 2 },
        fileName: 'g.yaml',
      }),
    ).toThrow(
      'config g.yaml: idleTimeout and tunnelIdleTimeout are the same option: keep tunnelIdleTimeout',
    )
  })

  it('layers defaults < file < flags, and file listen/target < positionals', () => {
    const file = {
      heartbeat: 5,
      drainTimeout: 1,
      logLevel: 'debug',
      listen: '127.0.0.1:7000',
      target: 'db:5432',
    }
    const fileOnly = resolveConfig({ file, fileName: 'g.yaml', flags: {}, cwd: '/srv' })
    expect(fileOnly).toMatchObject({
      heartbeatMs: 5000,
      drainTimeoutMs: 1000,
      logLevel: 'debug',
      idleTimeoutMs: 0,
      listen: { kind: 'tcp', host: '127.0.0.1', port: 7000 },
      target: { kind: 'tcp', host: 'db', port: 5432 },
    })
    const both = resolveConfig({
      file,
      fileName: 'g.yaml',
      flags: { heartbeat: '7' },
      listen: '8000',
      target: 'unix:vnc.sock',
      cwd: '/srv',
    })
    expect(both).toMatchObject({
      heartbeatMs: 7000,
      drainTimeoutMs: 1000,
      logLevel: 'debug',
      listen: { kind: 'tcp', host: undefined, port: 8000 },
      target: { kind: 'unix', path: '/srv/vnc.sock' },
    })
  })

  it('validates a file value even when a flag overrides it', () => {
    expect(
      messageOf(() =>
        resolveConfig({
          ...base,
          file: { heartbeat: 'x' },
          fileName: 'g.yaml',
          flags: { heartbeat: '1' },
        }),
      ),
    ).toBe('config g.yaml: heartbeat: expected seconds (a non-negative number), got "x"')
  })

  it.each([
    [
      { flags: { heartbeat: 'abc' } },
      '--heartbeat: expected seconds (a non-negative number), got "abc"',
    ],
    [
      { flags: { maxMessageSize: '0' } },
      '--max-message-size: expected a positive size in bytes (e.g. 65536, 512KiB, 1MiB, 4mb), got "0"',
    ],
    [
      { flags: { logFormat: 'xml' } },
      '--log-format: expected one of auto, json, pretty, got "xml"',
    ],
    [
      { flags: { listenMode: '999' } },
      '--listen-mode: expected octal permission bits (e.g. 600 or 0660), got "999"',
    ],
    [
      { flags: { maxConnections: '-1' } },
      '--max-connections: expected a count (a non-negative integer), got "-1"',
    ],
    [{ flags: { web: '' } }, '--web: expected a path (a non-empty string), got ""'],
    [{ flags: { nope: '1' } }, 'unknown option "nope"'],
    [{ file: { heartbeet: 1 } }, 'config /x/g.yaml: unknown key "heartbeet"'],
    [
      { file: { 'drain-timeout': 1 } },
      'config /x/g.yaml: unknown key "drain-timeout" (config keys are camelCase: "drainTimeout")',
    ],
    [
      { file: { compress: 'yes' } },
      'config /x/g.yaml: compress: expected true or false, got "yes"',
    ],
    [{ file: { text: 1003 } }, 'config /x/g.yaml: text: expected one of forward, reject, got 1003'],
    [
      { file: { heartbeat: null } },
      'config /x/g.yaml: heartbeat: expected seconds (a non-negative number), got null',
    ],
    [
      { file: { listen: 6080 } },
      'config /x/g.yaml: listen: expected a string such as "127.0.0.1:6080", got 6080',
    ],
    [
      { file: { target: ['a'] } },
      'config /x/g.yaml: target: expected a string such as "localhost:5900", got ["a"]',
    ],
  ])('reports %j as %j', (input, message) => {
    expect(messageOf(() => resolveConfig({ ...base, fileName: '/x/g.yaml', ...input }))).toBe(
      message,
    )
  })

  it('names the positional or the file key in address errors', () => {
    expect(messageOf(() => resolveConfig({ ...base, listen: 'nope' }))).toBe(
      'LISTEN "nope" has no port (expected [host:]port or unix:/path)',
    )
    expect(messageOf(() => resolveConfig({ ...base, target: 'localhost' }))).toBe(
      'TARGET "localhost" has no port (expected host:port or unix:/path)',
    )
    expect(
      messageOf(() =>
        resolveConfig({ flags: {}, file: { listen: '1', target: 'db' }, fileName: 'g.json' }),
      ),
    ).toBe('config g.json: target "db" has no port (expected host:port or unix:/path)')
  })

  it('validates file addresses even when positionals override them', () => {
    expect(
      messageOf(() => resolveConfig({ ...base, file: { listen: '' }, fileName: 'g.yaml' })),
    ).toBe('config g.yaml: listen "" is not an address (expected [host:]port or unix:/path)')
    expect(
      messageOf(() => resolveConfig({ ...base, file: { target: 'unix:' }, fileName: 'g.yaml' })),
    ).toBe('config g.yaml: target "unix:" has an empty path (expected host:port or unix:/path)')
  })

  it('reports missing positionals', () => {
    expect(messageOf(() => resolveConfig({ flags: {} }))).toBe(
      'missing LISTEN and TARGET (usage: gangway [options] LISTEN TARGET)',
    )
    expect(messageOf(() => resolveConfig({ flags: {}, listen: '6080' }))).toBe(
      'missing TARGET (expected host:port or unix:/path after LISTEN, or "target" in the config file)',
    )
    expect(
      messageOf(() => resolveConfig({ flags: {}, file: { target: 'a:1' }, fileName: 'g.yaml' })),
    ).toBe('missing LISTEN (expected [host:]port or unix:/path, or "listen" in the config file)')
  })

  it('leaves missing positionals undefined in resolveOptions (the demo supplies its own)', () => {
    const resolved = resolveOptions({ flags: { heartbeat: '1' } })
    expect(resolved.listen).toBeUndefined()
    expect(resolved.target).toBeUndefined()
    expect(resolved.options.heartbeatMs).toBe(1000)
  })
})

describe('config files', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
    dir = undefined
  })
  async function file(name: string, text: string): Promise<string> {
    dir ??= await mkdtemp(join(tmpdir(), 'gangway-config-'))
    const path = join(dir, name)
    await writeFile(path, text)
    return path
  }

  it('reads YAML by extension', async () => {
    const path = await file('g.yaml', '# comment\nheartbeat: 0.5\nlistenMode: 0660\nweb: www\n')
    expect(await readConfigFile(path)).toEqual({
      fileName: path,
      values: { heartbeat: 0.5, listenMode: 660, web: 'www' },
    })
  })

  it('reads JSON by extension, ignoring a byte-order mark', async () => {
    const path = await file('g.json', '\uFEFF{ "maxMessageSize": "1MiB", "compress": true }')
    expect((await readConfigFile(path)).values).toEqual({ maxMessageSize: '1MiB', compress: true })
  })

  it('tries JSON and then YAML for other extensions', () => {
    expect(parseConfigText('{"heartbeat": 1}', 'gangway.conf')).toEqual({ heartbeat: 1 })
    expect(parseConfigText('heartbeat: 1', 'gangway.conf')).toEqual({ heartbeat: 1 })
    expect(parseConfigText('heartbeat: 1', 'gangway')).toEqual({ heartbeat: 1 })
  })

  it('reads an empty YAML file as no options', () => {
    expect(parseConfigText('', 'g.yaml')).toEqual({})
    expect(parseConfigText('# nothing yet\n', 'g.yml')).toEqual({})
    expect(parseConfigText('~', 'g.yml')).toEqual({})
  })

  it('names the file when it cannot be read', async () => {
    const missing = join(tmpdir(), 'gangway-no-such-dir', 'g.yaml')
    expect(await rejectionOf(readConfigFile(missing))).toBe(
      `config ${missing}: cannot read it (no such file)`,
    )
    const path = await file('g.yaml', 'heartbeat: 1\n')
    expect(await rejectionOf(readConfigFile(dir as string))).toBe(
      `config ${dir}: cannot read it (it is a directory)`,
    )
    if (process.getuid?.() !== 0) {
      await chmod(path, 0o000)
      expect(await rejectionOf(readConfigFile(path))).toBe(
        `config ${path}: cannot read it (permission denied)`,
      )
    }
  })

  it.each([
    [
      'g.json',
      '{\n  "heartbeat": 1,\n}',
      'invalid JSON at line 3, column 1: trailing comma before "}"',
    ],
    ['g.json', '{\n  "heartbeat": tru\n}', 'invalid JSON at line 2, column 16: unexpected "t"'],
    [
      'g.json',
      '{\n  heartbeat: 1\n}',
      'invalid JSON at line 2, column 3: expected a double-quoted key',
    ],
    ['g.json', '{"heartbeat" 1}', 'invalid JSON at line 1, column 14: expected ":" after a key'],
    ['g.json', '{"a": "x', 'invalid JSON at line 1, column 9: unterminated string'],
    ['g.json', '', 'invalid JSON at line 1, column 1: unexpected end of input'],
    ['g.json', '{} {}', 'invalid JSON at line 1, column 4: unexpected "{"'],
    [
      'g.yaml',
      'heartbeat: 1\nheartbeat: 2\n',
      'invalid YAML: Map keys must be unique at line 2, column 1',
    ],
    [
      'g.yml',
      'heartbeat: [1,\nweb: x\n',
      'invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1',
    ],
    ['g.yaml', 'a: 1\n---\nb: 2\n', 'expected one YAML document, found 2'],
    ['g.yaml', '- heartbeat\n', 'expected a mapping of option keys at the top level, got a list'],
    ['g.json', '"heartbeat"', 'expected a mapping of option keys at the top level, got a string'],
    ['g.json', '42', 'expected a mapping of option keys at the top level, got number 42'],
  ])('reports a syntax error in %s %j with its line', (name, text, problem) => {
    expect(messageOf(() => parseConfigText(text, `/etc/${name}`))).toBe(
      `config /etc/${name}: ${problem}`,
    )
  })

  it('locates the JSON errors V8 reports without a position', () => {
    expect(locateJsonError('[1,]')).toEqual({ offset: 3, problem: 'trailing comma before "]"' })
    expect(locateJsonError('{"a": "\\x"}')).toEqual({
      offset: 8,
      problem: 'invalid escape in string',
    })
    expect(locateJsonError('["a\u0001"]')).toEqual({
      offset: 3,
      problem: 'control character in string',
    })
    expect(locateJsonError('[01]')).toEqual({ offset: 2, problem: 'unexpected "1"' })
  })
})
