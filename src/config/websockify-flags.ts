/**
 * @module config/websockify-flags
 * Every websockify 0.13 command-line flag that is not also a Gangway option, once: what it becomes here
 * (a Gangway option with websockify's meaning) or why it is refused and what to use instead. A websockify
 * command line therefore either means what it meant or stops with one line; no flag is ignored. Pure: the
 * CLI declares these flags (hidden from --help) and hands their values to `applyWebsockifyFlags`.
 * Flags that are Gangway options under the same name (`--cert`, `--key`, `--web`, `--heartbeat`,
 * `--record`, `--token-plugin`, `--token-source`, `--host-token`) are not listed here.
 */
import { ConfigError } from '../errors.js'

export interface WebsockifyFlag {
  /** The long flag without dashes. */
  readonly flag: string
  /** websockify's one-letter alias, if any (`-v`, `-D`, `-6`). */
  readonly short?: string
  /** Whether it takes a value (`--timeout N`) or is a switch. */
  readonly takesValue: boolean
  /** Set when Gangway refuses it: what to do instead (one line). */
  readonly refused?: string
}

const NO_WRAP =
  'Gangway does not start programs: run the program under its own supervisor (systemd, a container) and give its listen address as TARGET'
const NO_CLIENT_CERTS =
  'Gangway does not check client certificates: terminate mutual TLS in a proxy in front (nginx ssl_verify_client, deploy/nginx-gangway.conf) and give clients tokens'
const LOG_TO_STDOUT =
  'Gangway logs JSON lines to stdout: let the supervisor collect them (journald, docker logs), or redirect them (gangway … >> FILE)'

/** websockify 0.13's flags (`websockify --help`) that are not Gangway options under the same name. */
export const WEBSOCKIFY_FLAGS: readonly WebsockifyFlag[] = [
  { flag: 'verbose', short: 'v', takesValue: false },
  {
    flag: 'traffic',
    takesValue: false,
    refused:
      'use --log-level debug for every tunnel event, or --record PREFIX for the bytes themselves',
  },
  {
    flag: 'daemon',
    short: 'D',
    takesValue: false,
    refused:
      'Gangway stays in the foreground: run it under systemd (deploy/gangway.service), in a container, or with nohup gangway … &',
  },
  {
    flag: 'run-once',
    takesValue: false,
    refused:
      'no single-connection mode: use --idle-timeout N (exit once no tunnel has been open for N seconds), with --max-connections 1',
  },
  {
    flag: 'timeout',
    takesValue: true,
    refused:
      'no fixed lifetime: use --idle-timeout N (exit after N seconds without tunnels), or the supervisor (systemd RuntimeMaxSec=, timeout N gangway …)',
  },
  { flag: 'idle-timeout', takesValue: true },
  {
    flag: 'libserver',
    takesValue: false,
    refused:
      'not needed (Gangway serves every connection in one event loop, with every option): remove it',
  },
  {
    flag: 'key-password',
    takesValue: true,
    refused:
      'encrypted keys are not supported (a password on the command line is visible in ps): decrypt the key once with openssl pkey -in KEY -out KEY.plain, readable by the service user only',
  },
  { flag: 'ssl-only', takesValue: false },
  {
    flag: 'ssl-target',
    takesValue: false,
    refused:
      'write the target as tls://host:port (a route: target: tls://host:port; see docs/auth.md)',
  },
  { flag: 'verify-client', takesValue: false, refused: NO_CLIENT_CERTS },
  { flag: 'cafile', takesValue: true, refused: NO_CLIENT_CERTS },
  { flag: 'ssl-version', takesValue: true },
  { flag: 'ssl-ciphers', takesValue: true },
  { flag: 'unix-listen', takesValue: true },
  { flag: 'unix-listen-mode', takesValue: true },
  { flag: 'unix-target', takesValue: true },
  {
    flag: 'inetd',
    takesValue: false,
    refused: 'Gangway binds its own socket: give LISTEN ([host:]port or unix:/path)',
  },
  {
    flag: 'prefer-ipv6',
    short: '6',
    takesValue: false,
    refused: 'write LISTEN as a bracketed IPv6 address, e.g. [::]:6080 (or [::1]:6080)',
  },
  {
    flag: 'web-auth',
    takesValue: false,
    refused:
      'Gangway has no auth plugins for --web: protect the static files in a proxy in front (nginx auth_basic), tunnels keep their tokens',
  },
  { flag: 'file-only', takesValue: false },
  { flag: 'wrap-mode', takesValue: true, refused: NO_WRAP },
  { flag: 'target-config', takesValue: true },
  { flag: 'auth-plugin', takesValue: true },
  { flag: 'auth-source', takesValue: true },
  { flag: 'log-file', takesValue: true, refused: LOG_TO_STDOUT },
  {
    flag: 'syslog',
    takesValue: true,
    refused:
      'Gangway logs JSON lines to stdout: under systemd the journal collects them (and forwards them to syslog); otherwise pipe them to logger(1)',
  },
  { flag: 'legacy-syslog', takesValue: false, refused: LOG_TO_STDOUT },
]

/** websockify's `-- COMMAND` (wrap a program). */
export const WRAP_REFUSAL = `a command after -- (websockify's wrapped program) is not supported: ${NO_WRAP}`

/** websockify `--ssl-version` values and the Gangway `tlsMinVersion` they mean. */
const SSL_VERSIONS: Readonly<Record<string, string | undefined>> = {
  default: 'TLSv1.2',
  tlsv1_2: 'TLSv1.2',
  tlsv1_3: 'TLSv1.3',
  tlsv1_1: undefined,
}

/** The auth plugins websockify ships, and what to use instead of each one Gangway has no equivalent for. */
const AUTH_PLUGINS: Readonly<Record<string, string>> = {
  BasicHTTPAuth:
    'give each client a token instead (--token-file, signed tokens), or put nginx auth_basic in front',
  ClientCertCNAuth: NO_CLIENT_CERTS,
}

export interface WebsockifyInput {
  /** Gangway option values (by config key) the websockify flags set. */
  readonly flags: Record<string, unknown>
  readonly listen: string | undefined
  readonly target: string | undefined
  /** `--ssl-only`: the resolved config must serve TLS. */
  readonly requireTls: boolean
}

/**
 * Turns the websockify flags given (`values`, keyed by flag name) into Gangway options, on top of the
 * Gangway flags (`flags`, by config key) and the positionals.
 * @throws {ConfigError} one line: a refused flag with what to use instead, or a conflict with a Gangway flag.
 */
export function applyWebsockifyFlags(
  values: Readonly<Record<string, unknown>>,
  flags: Readonly<Record<string, unknown>>,
  positionals: { listen: string | undefined; target: string | undefined; wrapped: boolean },
): WebsockifyInput {
  for (const spec of WEBSOCKIFY_FLAGS) {
    const value = values[spec.flag]
    if (value === undefined || value === false || spec.refused === undefined) continue
    throw new ConfigError(`--${spec.flag} (websockify) is not supported: ${spec.refused}`)
  }
  if (positionals.wrapped) throw new ConfigError(WRAP_REFUSAL)
  const out: Record<string, unknown> = { ...flags }
  let { listen, target } = positionals
  const set = (websockify: string, key: string, gangway: string, value: unknown): void => {
    if (out[key] !== undefined && flags[key] !== undefined) {
      throw new ConfigError(`--${websockify} and --${gangway} both set ${key}: keep one`)
    }
    out[key] = value
  }
  const text = (flag: string): string | undefined => {
    const value = last(values[flag])
    if (value === undefined) return undefined
    if (typeof value !== 'string' || value === '') {
      throw new ConfigError(`--${flag}: expected a value`)
    }
    return value
  }

  if (last(values['verbose']) === true) set('verbose', 'logLevel', 'log-level', 'debug')
  const idle = text('idle-timeout')
  if (idle !== undefined) set('idle-timeout', 'idleExit', 'idle-exit', idle)
  const sslVersion = text('ssl-version')
  if (sslVersion !== undefined) {
    if (!(sslVersion in SSL_VERSIONS)) {
      throw new ConfigError(
        `--ssl-version: expected one of ${Object.keys(SSL_VERSIONS).join(', ')}, got ${JSON.stringify(sslVersion)}`,
      )
    }
    const min = SSL_VERSIONS[sslVersion]
    if (min === undefined) {
      throw new ConfigError(
        '--ssl-version tlsv1_1 is not supported: Gangway accepts TLS 1.2 and 1.3 only (--ssl-version tlsv1_2, or --tls-min-version TLSv1.2)',
      )
    }
    set('ssl-version', 'tlsMinVersion', 'tls-min-version', min)
  }
  const ciphers = text('ssl-ciphers')
  if (ciphers !== undefined) set('ssl-ciphers', 'tlsCiphers', 'tls-ciphers', ciphers)
  const mode = text('unix-listen-mode')
  if (mode !== undefined) set('unix-listen-mode', 'listenMode', 'listen-mode', mode)
  const targetConfig = text('target-config')
  if (targetConfig !== undefined) set('target-config', 'tokenFile', 'token-file', targetConfig)

  const unixListen = text('unix-listen')
  if (unixListen !== undefined) {
    // websockify: `--unix-listen FILE TARGET`, the one positional is the target.
    if (target !== undefined) {
      throw new ConfigError('--unix-listen replaces LISTEN: give only TARGET after it')
    }
    target = listen
    listen = `unix:${unixListen}`
  }
  const unixTarget = text('unix-target')
  if (unixTarget !== undefined) {
    if (target !== undefined) {
      throw new ConfigError('--unix-target replaces TARGET: give only LISTEN')
    }
    target = `unix:${unixTarget}`
  }

  const plugin = text('auth-plugin')
  const source = text('auth-source')
  if (source !== undefined && plugin === undefined) {
    throw new ConfigError('--auth-source needs --auth-plugin')
  }
  if (plugin !== undefined) {
    const name = plugin.replace(/^websockify\.auth_plugins\./, '')
    if (name !== 'ExpectOrigin') {
      throw new ConfigError(
        `--auth-plugin ${plugin} (websockify) is not supported: ${AUTH_PLUGINS[name] ?? 'Gangway has no auth plugins; --allowed-origins replaces ExpectOrigin, tokens replace the others'}`,
      )
    }
    if (source === undefined) {
      throw new ConfigError('--auth-plugin ExpectOrigin needs --auth-source "ORIGIN …"')
    }
    const origins = source.split(/\s+/).filter((origin) => origin !== '')
    set('auth-plugin ExpectOrigin', 'allowedOrigins', 'allowed-origins', origins)
  }
  return {
    flags: out,
    listen,
    target,
    requireTls: last(values['ssl-only']) === true,
  }
}

/** A flag given twice arrives as an array: the last one wins, as for Gangway's own flags. */
function last(value: unknown): unknown {
  return Array.isArray(value) ? value.at(-1) : value
}
