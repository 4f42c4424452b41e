/**
 * @module config/options
 * Every option Gangway has, once: its config key, flag, default and meaning. The CLI builds `--help` and the
 * config-file validation from `OPTIONS`; the server only ever sees a validated, frozen `Config`.
 * Pure: reads no file but the config file, opens no socket, and knows nothing of how an option is used.
 */
import { parseListen, parseTarget, type ListenAddress, type Target } from './address.js'
import { ConfigError } from '../errors.js'
import type { LogFormat, LogLevel } from '../log.js'
import {
  describeValue,
  parseOptionValue,
  type OptionKind,
  type OptionValue,
} from './option-values.js'
import { parseRoutes, type Routes, type TextPolicy } from './routes.js'
import { applyTokenPlugin, TOKEN_PLUGINS } from './websockify-plugins.js'

export * from './option-values.js'
export type { ListenAddress, Target } from './address.js'
export type { LogFormat, LogLevel } from '../log.js'
export type { TextPolicy } from './routes.js'

export type RefuseWith = 'close' | 'http'

export interface Config {
  /** Listen address (positional LISTEN). */
  readonly listen: ListenAddress
  /** The target every tunnel dials (positional TARGET); undefined when tokens or routes pick it. */
  readonly target: Target | undefined
  /** Named targets from the config file's `routes` (docs/auth.md); a file-only key, like `target`. */
  readonly routes?: Routes
  /** Permission bits of a unix listen socket. */
  readonly listenMode: number
  readonly textPolicy: TextPolicy
  readonly refuseWith: RefuseWith
  readonly connectTimeoutMs: number
  readonly heartbeatMs: number
  /** Per-tunnel idle close (`tunnelIdleTimeout`; the config key `idleTimeout` of Gangway 0.1). */
  readonly idleTimeoutMs: number
  /** websockify `--idle-timeout`: the daemon exits after this long with no tunnel open; 0 = never. */
  readonly idleExitMs: number
  readonly drainTimeoutMs: number
  readonly handshakeTimeoutMs: number
  readonly maxMessageBytes: number
  readonly maxHeaderBytes: number
  readonly highWaterMarkBytes: number
  readonly maxConnections: number
  /** Connections in their handshake or being refused (not carrying a tunnel) beyond which new ones drop. */
  readonly maxHandshakes: number
  readonly compress: boolean
  readonly webRoot: string | undefined
  /** Admin listener address (metrics, health, readiness); off when undefined. */
  readonly admin: string | undefined
  /** File holding the admin token that enables the admin API and status page. */
  readonly adminTokenFile: string | undefined
  /** PEM certificate (chain) for wss:; TLS is off when undefined. */
  readonly tlsCert: string | undefined
  /** PEM private key; defaults to the certificate file. */
  readonly tlsKey: string | undefined
  readonly tlsMinVersion: 'TLSv1.2' | 'TLSv1.3'
  readonly tlsCiphers: string | undefined
  /** Every connection to the listener starts with a PROXY protocol (v1 or v2) header. */
  readonly proxyProtocol: boolean
  /** Comma-separated addresses/CIDRs (`unix`, `loopback`) whose forwarding header is believed. */
  readonly trustProxy: string | undefined
  /** The header those proxies name the client in: X-Forwarded-For, Forwarded (RFC 7239) or another. */
  readonly trustProxyHeader: string
  /** CA file, client certificate and key files for `tls://` targets; `insecure` skips verification. */
  readonly targetCa: string | undefined
  readonly targetCert: string | undefined
  readonly targetKey: string | undefined
  readonly targetInsecure: boolean
  /** Send a PROXY protocol header to the target, so the backend learns the client address. */
  readonly targetProxyProtocol: 'off' | 'v1' | 'v2'
  /** Redis shared by several nodes: revocations, per-token limits, single-use JWT ids (docs/operations.md). */
  readonly stateRedis: string | undefined
  readonly statePrefix: string
  /** Close tunnels when the token that opened them expires (`enforce`), or let them live (`ignore`). */
  readonly sessionExpiry: 'enforce' | 'ignore'
  /** How long after its token's expiry a tunnel may live on. */
  readonly sessionExpiryGraceMs: number
  /** How long before the end gangway.v1 clients get an `expiring` message (0 = none). */
  readonly sessionExpiryWarningMs: number
  /**
   * Session recordings (one file per tunnel): websockify's file prefix (`PREFIX.<time>-conn<id>.jsonl`), or
   * with a trailing `/` a directory; off when undefined.
   */
  readonly record: string | undefined
  /** Worker processes sharing the listener; 0 = one per CPU core. */
  readonly workers: number
  /** This node's name on every log line (default: the host name; see `resolveNodeId`). */
  readonly nodeId: string | undefined
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  readonly allow: readonly string[] | undefined
  readonly allowedOrigins: readonly string[] | undefined
  readonly clientTargets: boolean
  readonly deny: readonly string[] | undefined
  readonly hostToken: boolean
  readonly jwksUrl: string | undefined
  readonly jwtAudience: string | undefined
  readonly jwtIssuer: string | undefined
  readonly jwtKey: string | undefined
  readonly jwtMaxLifetimeMs: number
  readonly jwtSingleUse: boolean
  /** How an HMAC key file is read: its bytes (default), or base64url text (websockify's JWTTokenApi). */
  readonly jwtSecretEncoding?: 'raw' | 'base64url'
  readonly tokenPlugin: string | undefined
  readonly tokenSource: string | undefined
  readonly maxAuthFailures: number
  readonly tokenApi: string | undefined
  readonly tokenApiCacheMs: number
  readonly tokenCookie: string
  readonly tokenDir: string | undefined
  readonly tokenRedis: string | undefined
  readonly tokenRedisPrefix: string | undefined
  readonly tokenFile: string | undefined
  /** Deprecations met while reading the config (a renamed key), for the daemon to log at startup. */
  readonly warnings?: readonly string[]
}

/** `Config` fields set by options (everything but the positionals). */
export type OptionField = Exclude<
  keyof Config,
  'listen' | 'target' | 'routes' | 'jwtSecretEncoding' | 'warnings'
>

export interface OptionSpec {
  /** Config-file key (camelCase); the flag is its kebab-case form. */
  readonly key: string
  /** The `Config` field the parsed value lands in (durations become milliseconds). */
  readonly field: OptionField
  readonly flag: string
  readonly kind: OptionKind
  /** Default as a user would write it (documented in --help and the README). */
  readonly default: string | number | boolean | undefined
  readonly describe: string
}

/** All options but the positionals, alphabetically by flag. Durations are in seconds, sizes in bytes. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'admin',
    field: 'admin',
    flag: 'admin',
    kind: 'string',
    default: undefined,
    describe:
      'Admin listener for /metrics (Prometheus), /healthz and /readyz: [host:]port (a bare port is loopback only) or unix:/path. Off unless given.',
  },
  {
    key: 'adminTokenFile',
    field: 'adminTokenFile',
    flag: 'admin-token-file',
    kind: 'path',
    default: undefined,
    describe:
      'File holding the admin token that enables the admin API and the live status page on --admin (or set GANGWAY_ADMIN_TOKEN).',
  },
  {
    key: 'allow',
    field: 'allow',
    flag: 'allow',
    kind: 'list',
    default: undefined,
    describe:
      'Target policy rule (repeatable): HOST, *.DOMAIN, IP or CIDR, with :PORT or :FROM-TO (10.0.0.0/8:5900-5999, db.internal:5432), or unix:/dir. Applies to targets not from routes or token files.',
  },
  {
    key: 'allowedOrigins',
    field: 'allowedOrigins',
    flag: 'allowed-origins',
    kind: 'list',
    default: undefined,
    describe:
      'Origins allowed to open tunnels (repeatable): exact (https://app.example.com) or wildcard (https://*.example.com). Others get 4403. Required for cookie tokens.',
  },
  {
    key: 'cert',
    field: 'tlsCert',
    flag: 'cert',
    kind: 'path',
    default: undefined,
    describe:
      'PEM certificate (chain) to serve wss:. Reloaded when the file changes and on SIGHUP, without dropping live tunnels.',
  },
  {
    key: 'clientTargets',
    field: 'clientTargets',
    flag: 'client-targets',
    kind: 'boolean',
    default: false,
    describe:
      'Let clients name their target with ?address=host:port or ?target= (needs allow rules; every such target is checked).',
  },
  {
    key: 'compress',
    field: 'compress',
    flag: 'compress',
    kind: 'boolean',
    default: false,
    describe:
      'Enable permessage-deflate. Off by default: tunnelled bytes are usually compressed or encrypted already. The message-size limit then applies to the inflated size.',
  },
  {
    key: 'connectTimeout',
    field: 'connectTimeoutMs',
    flag: 'connect-timeout',
    kind: 'seconds',
    default: 10,
    describe:
      'Seconds to establish the TCP connection to the target (all resolved addresses, happy eyeballs).',
  },
  {
    key: 'deny',
    field: 'deny',
    flag: 'deny',
    kind: 'list',
    default: undefined,
    describe:
      'Target policy rule that forbids what it matches, even when an allow rule matches (repeatable).',
  },
  {
    key: 'drainTimeout',
    field: 'drainTimeoutMs',
    flag: 'drain-timeout',
    kind: 'seconds',
    default: 10,
    describe:
      'On SIGTERM/SIGINT, seconds live tunnels may finish before they are closed with 1001.',
  },
  {
    key: 'handshakeTimeout',
    field: 'handshakeTimeoutMs',
    flag: 'handshake-timeout',
    kind: 'seconds',
    default: 10,
    describe:
      'Seconds from accept to a complete HTTP upgrade request, PROXY header and TLS handshake included (slowloris guard, 408); also how long a refused client has to answer the close frame.',
  },
  {
    key: 'heartbeat',
    field: 'heartbeatMs',
    flag: 'heartbeat',
    kind: 'seconds',
    default: 30,
    describe:
      'Seconds between WebSocket pings; a peer that has not answered by the next ping is terminated. 0 turns it off.',
  },
  {
    key: 'highWaterMark',
    field: 'highWaterMarkBytes',
    flag: 'high-water-mark',
    kind: 'bytes',
    default: '1MiB',
    describe:
      'Bytes queued towards one side (the browser or the target) before the daemon stops reading the other.',
  },
  {
    key: 'hostToken',
    field: 'hostToken',
    flag: 'host-token',
    kind: 'boolean',
    default: false,
    describe:
      'Also take the token from the Host header, up to its port (websockify --host-token: one subdomain per session).',
  },
  {
    key: 'idleExit',
    field: 'idleExitMs',
    flag: 'idle-exit',
    kind: 'seconds',
    default: 0,
    describe:
      'Exit (code 0) after this many seconds with no tunnel open, counted from startup (websockify --idle-timeout, which is accepted too). 0 = never.',
  },
  {
    key: 'jwksUrl',
    field: 'jwksUrl',
    flag: 'jwks-url',
    kind: 'string',
    default: undefined,
    describe: 'Verify signed tokens (JWT) with the keys of this JWKS URL (RS256, ES256, EdDSA).',
  },
  {
    key: 'jwtAudience',
    field: 'jwtAudience',
    flag: 'jwt-audience',
    kind: 'string',
    default: undefined,
    describe: 'Signed tokens must carry this aud claim.',
  },
  {
    key: 'jwtIssuer',
    field: 'jwtIssuer',
    flag: 'jwt-issuer',
    kind: 'string',
    default: undefined,
    describe: 'Signed tokens must carry this iss claim.',
  },
  {
    key: 'jwtKey',
    field: 'jwtKey',
    flag: 'jwt-key',
    kind: 'path',
    default: undefined,
    describe:
      'Verify signed tokens (JWT) with this key file: an HMAC secret (HS256, 32 bytes or more), a PEM key or certificate (RS256, ES256, EdDSA), or a JWK/JWKS file.',
  },
  {
    key: 'jwtMaxLifetime',
    field: 'jwtMaxLifetimeMs',
    flag: 'jwt-max-lifetime',
    kind: 'seconds',
    default: 3600,
    describe:
      'Longest lifetime a signed token may have: its exp (required) at most this many seconds ahead.',
  },
  {
    key: 'jwtSingleUse',
    field: 'jwtSingleUse',
    flag: 'jwt-single-use',
    kind: 'boolean',
    default: false,
    describe: 'Each signed token opens one tunnel: its jti is required and a replay gets 4401.',
  },
  {
    key: 'key',
    field: 'tlsKey',
    flag: 'key',
    kind: 'path',
    default: undefined,
    describe: 'PEM private key for --cert (default: the --cert file itself).',
  },
  {
    key: 'listenMode',
    field: 'listenMode',
    flag: 'listen-mode',
    kind: 'mode',
    default: '600',
    describe: 'Octal permission bits of a unix:/path listen socket.',
  },
  {
    key: 'logFormat',
    field: 'logFormat',
    flag: 'log-format',
    kind: { choices: ['auto', 'json', 'pretty'] },
    default: 'auto',
    describe: 'JSON lines, readable text, or auto (text when stdout is a terminal).',
  },
  {
    key: 'logLevel',
    field: 'logLevel',
    flag: 'log-level',
    kind: { choices: ['debug', 'info', 'warn', 'error', 'silent'] },
    default: 'info',
    describe: 'Least severe level that is logged.',
  },
  {
    key: 'maxAuthFailures',
    field: 'maxAuthFailures',
    flag: 'max-auth-failures',
    kind: 'count',
    default: 10,
    describe:
      'Failed token attempts per client address per minute; beyond it the address gets 4429 (HTTP 429). 0 = no limit.',
  },
  {
    key: 'maxConnections',
    field: 'maxConnections',
    flag: 'max-connections',
    kind: 'count',
    default: 10000,
    describe:
      'Open tunnels (including ones being dialled) beyond which new ones are refused with 4429 (HTTP 503). 0 = no limit.',
  },
  {
    key: 'maxHandshakes',
    field: 'maxHandshakes',
    flag: 'max-handshakes',
    kind: 'count',
    default: 4096,
    describe:
      'Connections not carrying a tunnel (in their TLS or HTTP handshake, being dialled, being refused) beyond which new ones are dropped at accept. Per process. 0 = no limit.',
  },
  {
    key: 'maxHeaderSize',
    field: 'maxHeaderBytes',
    flag: 'max-header-size',
    kind: 'bytes',
    default: '16KiB',
    describe: 'Largest HTTP request head accepted; larger ones get 431.',
  },
  {
    key: 'maxMessageSize',
    field: 'maxMessageBytes',
    flag: 'max-message-size',
    kind: 'bytes',
    default: '4MiB',
    describe:
      'Largest text message (held whole to check its UTF-8), or inflated message with --compress, accepted from a client; above it: close 1009. Binary messages stream, of any size.',
  },
  {
    key: 'nodeId',
    field: 'nodeId',
    flag: 'node-id',
    kind: 'string',
    default: undefined,
    describe:
      'Name of this node on every log line, the status page and /api/tunnels (letters, digits, . _ : -; at most 63). Default: the host name.',
  },
  {
    key: 'proxyProtocol',
    field: 'proxyProtocol',
    flag: 'proxy-protocol',
    kind: 'boolean',
    default: false,
    describe:
      'Expect a PROXY protocol v1/v2 header on every connection to the listener (behind HAProxy, AWS NLB, …); connections without one are dropped.',
  },
  {
    key: 'record',
    field: 'record',
    flag: 'record',
    kind: 'prefix',
    default: undefined,
    describe:
      'Record every tunnel’s payload, with times and directions, to one file per tunnel: PREFIX.<time>-conn<id>.jsonl (websockify’s file prefix), or into a directory when it ends in / (see gangway replay). Off by default; never records tokens.',
  },
  {
    key: 'refuseWith',
    field: 'refuseWith',
    flag: 'refuse-with',
    kind: { choices: ['close', 'http'] },
    default: 'close',
    describe:
      'How a refusal or a failed dial is reported: "close" completes the upgrade and closes with a 4xxx code (readable from JavaScript); "http" answers 401/403/429/502/503/504 before the upgrade.',
  },
  {
    key: 'sessionExpiry',
    field: 'sessionExpiry',
    flag: 'session-expiry',
    kind: { choices: ['enforce', 'ignore'] },
    default: 'enforce',
    describe:
      'Tunnels opened with a token that expires (JWT exp, token API expiresAt, a Redis key TTL) close with 4401 "token expired" at its expiry plus --session-expiry-grace ("enforce"), or live on ("ignore").',
  },
  {
    key: 'sessionExpiryGrace',
    field: 'sessionExpiryGraceMs',
    flag: 'session-expiry-grace',
    kind: 'seconds',
    default: 0,
    describe: 'Seconds a tunnel may outlive the expiry of the token that opened it.',
  },
  {
    key: 'sessionExpiryWarning',
    field: 'sessionExpiryWarningMs',
    flag: 'session-expiry-warning',
    kind: 'seconds',
    default: 60,
    describe:
      'Seconds before a tunnel is closed for its token\'s expiry (or its route\'s maxDuration) that gangway.v1 clients get an "expiring" message, to fetch a new token and reconnect; 0 = none.',
  },
  {
    key: 'statePrefix',
    field: 'statePrefix',
    flag: 'state-prefix',
    kind: 'string',
    default: 'gangway:',
    describe: 'Prefix of the shared-state Redis keys and channel (--state-redis).',
  },
  {
    key: 'stateRedis',
    field: 'stateRedis',
    flag: 'state-redis',
    kind: 'string',
    default: undefined,
    describe:
      'Share state between nodes in Redis (redis://[:password@]host[:port][/db]): token revocations (gangway revoke), per-token connection limits, single-use JWT ids. Redis down = 4503 for new tunnels with tokens.',
  },
  {
    key: 'targetCa',
    field: 'targetCa',
    flag: 'target-ca',
    kind: 'path',
    default: undefined,
    describe:
      "PEM file of the CA certificate(s) a tls:// target's certificate must chain to (default: Node's public roots). Routes may set their own.",
  },
  {
    key: 'targetCert',
    field: 'targetCert',
    flag: 'target-cert',
    kind: 'path',
    default: undefined,
    describe: 'PEM client certificate (chain) presented to tls:// targets that require one (mTLS).',
  },
  {
    key: 'targetInsecure',
    field: 'targetInsecure',
    flag: 'target-insecure',
    kind: 'boolean',
    default: false,
    describe:
      'Do not verify the certificates of tls:// targets (labs only; logged as a warning at startup).',
  },
  {
    key: 'targetKey',
    field: 'targetKey',
    flag: 'target-key',
    kind: 'path',
    default: undefined,
    describe: 'PEM private key for --target-cert (default: the --target-cert file itself).',
  },
  {
    key: 'targetProxyProtocol',
    field: 'targetProxyProtocol',
    flag: 'target-proxy-protocol',
    kind: { choices: ['off', 'v1', 'v2'] },
    default: 'off',
    describe:
      'Send a PROXY protocol header to the target first, so the backend learns the client address.',
  },
  {
    key: 'text',
    field: 'textPolicy',
    flag: 'text',
    kind: { choices: ['forward', 'reject'] },
    default: 'forward',
    describe:
      'Text messages: forward their UTF-8 bytes to the target, or reject them (close 1003).',
  },
  {
    key: 'tlsCiphers',
    field: 'tlsCiphers',
    flag: 'tls-ciphers',
    kind: 'string',
    default: undefined,
    describe:
      "OpenSSL cipher list for TLS 1.2 connections (TLS 1.3 suites are Node's); none = Node's default list.",
  },
  {
    key: 'tlsMinVersion',
    field: 'tlsMinVersion',
    flag: 'tls-min-version',
    kind: { choices: ['TLSv1.2', 'TLSv1.3'] },
    default: 'TLSv1.2',
    describe: 'Oldest TLS version the listener accepts.',
  },
  {
    key: 'tokenApi',
    field: 'tokenApi',
    flag: 'token-api',
    kind: 'string',
    default: undefined,
    describe:
      'HTTP token API: a URL template with %s or {token} (URL-encoded token); 2xx with host:port or JSON is a hit, 404 unknown, others 4503.',
  },
  {
    key: 'tokenApiCache',
    field: 'tokenApiCacheMs',
    flag: 'token-api-cache',
    kind: 'seconds',
    default: 5,
    describe: 'Seconds a token API answer (hit or miss) is reused. 0 = ask every time.',
  },
  {
    key: 'tokenCookie',
    field: 'tokenCookie',
    flag: 'token-cookie',
    kind: 'string',
    default: 'gangway_token',
    describe:
      'Name of the cookie a token may travel in (cookie tokens need allowedOrigins: the Origin is then checked).',
  },
  {
    key: 'tokenDir',
    field: 'tokenDir',
    flag: 'token-dir',
    kind: 'path',
    default: undefined,
    describe:
      'A directory with one file per token: the file named like the token holds its host:port (websockify TokenFileName).',
  },
  {
    key: 'tokenFile',
    field: 'tokenFile',
    flag: 'token-file',
    kind: 'path',
    default: undefined,
    describe:
      'A websockify token file ("token: host:port" lines) or a directory of them; reloaded when it changes and on SIGHUP.',
  },
  {
    key: 'tokenPlugin',
    field: 'tokenPlugin',
    flag: 'token-plugin',
    kind: { choices: TOKEN_PLUGINS },
    default: undefined,
    describe:
      'websockify alias, with --token-source: TokenFile/ReadOnlyTokenFile = --token-file, TokenFileName = --token-dir, JWTTokenApi = --jwt-key, TokenRedis = --token-redis, JSONTokenApi = --token-api.',
  },
  {
    key: 'tokenRedis',
    field: 'tokenRedis',
    flag: 'token-redis',
    kind: 'string',
    default: undefined,
    describe:
      'Tokens in Redis: redis://[:password@]host[:port][/db] (or websockify host:port:db:password:namespace); the key holds host:port or JSON. Redis down = 4503.',
  },
  {
    key: 'tokenRedisPrefix',
    field: 'tokenRedisPrefix',
    flag: 'token-redis-prefix',
    kind: 'string',
    default: undefined,
    describe: 'Prefix of the Redis keys tokens are stored under (the key is prefix + token).',
  },
  {
    key: 'tokenSource',
    field: 'tokenSource',
    flag: 'token-source',
    kind: 'string',
    default: undefined,
    describe:
      'websockify alias: the source of --token-plugin (a file, directory, key file, Redis source or URL).',
  },
  {
    key: 'trustProxy',
    field: 'trustProxy',
    flag: 'trust-proxy',
    kind: 'string',
    default: undefined,
    describe:
      'Comma-separated addresses or CIDR blocks of proxies whose forwarding header (trustProxyHeader) names the real client; unix trusts the peers of a unix:/path listener, loopback 127.0.0.0/8, ::1 and unix.',
  },
  {
    key: 'trustProxyHeader',
    field: 'trustProxyHeader',
    flag: 'trust-proxy-header',
    kind: 'string',
    default: 'X-Forwarded-For',
    describe:
      'The one header a trusted proxy (trustProxy) names the client in, read from its right end: X-Forwarded-For, Forwarded (RFC 7239) or another list of addresses (X-Real-IP).',
  },
  {
    key: 'tunnelIdleTimeout',
    field: 'idleTimeoutMs',
    flag: 'tunnel-idle-timeout',
    kind: 'seconds',
    default: 0,
    describe:
      'Close a tunnel with 4408 after this many seconds without payload in either direction. 0 = off. (The config key idleTimeout of Gangway 0.1.)',
  },
  {
    key: 'web',
    field: 'webRoot',
    flag: 'web',
    kind: 'path',
    default: undefined,
    describe: 'Serve static files from this directory (GET/HEAD) on the listen address.',
  },
  {
    key: 'workers',
    field: 'workers',
    flag: 'workers',
    kind: 'count',
    default: 1,
    describe:
      'Worker processes sharing the listener (node:cluster), to use several cores; 0 = one per core. Metrics and the admin API cover all workers.',
  },
]

/** Defaults as a `Config` minus the positionals (the demo and tests build on it). */
export const DEFAULTS = {
  listenMode: 0o600,
  textPolicy: 'forward',
  refuseWith: 'close',
  connectTimeoutMs: 10_000,
  heartbeatMs: 30_000,
  idleTimeoutMs: 0,
  idleExitMs: 0,
  drainTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  maxMessageBytes: 4 * 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  highWaterMarkBytes: 1024 * 1024,
  maxConnections: 10_000,
  maxHandshakes: 4096,
  compress: false,
  webRoot: undefined,
  admin: undefined,
  adminTokenFile: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsMinVersion: 'TLSv1.2',
  tlsCiphers: undefined,
  proxyProtocol: false,
  trustProxy: undefined,
  trustProxyHeader: 'X-Forwarded-For',
  targetCa: undefined,
  targetCert: undefined,
  targetKey: undefined,
  targetInsecure: false,
  targetProxyProtocol: 'off',
  stateRedis: undefined,
  statePrefix: 'gangway:',
  sessionExpiry: 'enforce',
  sessionExpiryGraceMs: 0,
  sessionExpiryWarningMs: 60_000,
  record: undefined,
  workers: 1,
  nodeId: undefined,
  logLevel: 'info',
  logFormat: 'auto',
  allow: undefined,
  allowedOrigins: undefined,
  clientTargets: false,
  deny: undefined,
  hostToken: false,
  jwksUrl: undefined,
  jwtAudience: undefined,
  jwtIssuer: undefined,
  jwtKey: undefined,
  jwtMaxLifetimeMs: 3_600_000,
  jwtSingleUse: false,
  maxAuthFailures: 10,
  tokenApi: undefined,
  tokenApiCacheMs: 5000,
  tokenCookie: 'gangway_token',
  tokenDir: undefined,
  tokenRedis: undefined,
  tokenRedisPrefix: undefined,
  tokenPlugin: undefined,
  tokenSource: undefined,
  tokenFile: undefined,
} as const satisfies Omit<Config, 'listen' | 'target'>

/** The default of an option as `--help` and the docs show it. */
export function describeDefault(spec: OptionSpec): string {
  return spec.default === undefined ? 'none' : String(spec.default)
}

export interface ResolveInput {
  /** Parsed config file: key → value (already known to be a mapping). */
  file?: Record<string, unknown>
  /** Names the file in error messages. */
  fileName?: string
  /** Flags given on the command line, keyed by option `key` (camelCase); undefined means "not given". */
  flags: Record<string, unknown>
  /** Positional LISTEN (overrides the file's `listen`). */
  listen?: string
  /** Positional TARGET (overrides the file's `target`). */
  target?: string
  /** Directory relative paths resolve against (default: `process.cwd()`). */
  cwd?: string
  /** websockify `--ssl-only`: refuse a config that does not serve TLS. */
  requireTls?: boolean
}

/** Everything but the positionals, which may still be missing (the demo supplies its own target). */
export interface ResolvedOptions {
  readonly options: Omit<Config, 'listen' | 'target'>
  /** Deprecated spellings met in the file, one line each. */
  readonly warnings: readonly string[]
  readonly listen: ListenAddress | undefined
  readonly target: Target | undefined
}

const FILE_ADDRESS_KEYS = ['listen', 'target', 'routes'] as const
/**
 * Config-file keys renamed since 0.1, kept so that old files still start. `idleTimeout` was the per-tunnel
 * idle close; the flag `--idle-timeout` now has websockify's meaning (the daemon exits when idle).
 */
const RENAMED_KEYS: Readonly<Record<string, string>> = { idleTimeout: 'tunnelIdleTimeout' }
const OPTIONS_BY_KEY = new Map(OPTIONS.map((spec) => [spec.key, spec]))

/**
 * Layers defaults < config file < flags (and file `listen`/`target` < positionals), validating every value
 * of the file and the flags. Missing positionals are left undefined; see `resolveConfig`.
 * @throws {ConfigError} one line naming the flag (`--heartbeat: …`) or the file and key (`config f.yaml: …`).
 */
export function resolveOptions(input: ResolveInput): ResolvedOptions {
  const cwd = input.cwd ?? process.cwd()
  const fileIn = input.file ?? {}
  const inFile = `config ${input.fileName ?? '(file)'}`
  const warnings: string[] = []
  const file = renameKeys(fileIn, inFile, warnings)
  for (const key of Object.keys(file)) {
    if (OPTIONS_BY_KEY.has(key) || (FILE_ADDRESS_KEYS as readonly string[]).includes(key)) continue
    const kebab = OPTIONS.find((spec) => spec.flag === key)
    const hint = kebab ? ` (config keys are camelCase: "${kebab.key}")` : ''
    throw new ConfigError(`${inFile}: unknown key ${JSON.stringify(key)}${hint}`)
  }
  for (const key of Object.keys(input.flags)) {
    if (!OPTIONS_BY_KEY.has(key)) throw new ConfigError(`unknown option ${JSON.stringify(key)}`)
  }
  const options: Record<string, OptionValue | Routes> = { ...DEFAULTS }
  if (file['routes'] !== undefined) {
    options['routes'] = parseRoutes(file['routes'], `${inFile}: routes`, cwd)
  }
  for (const spec of OPTIONS) {
    const fromFile = file[spec.key]
    const fromFlag = input.flags[spec.key]
    if (fromFile !== undefined) {
      options[spec.field] = withPrefix(`${inFile}: ${spec.key}`, spec.kind, fromFile, cwd)
    }
    if (fromFlag !== undefined) {
      options[spec.field] = withPrefix(`--${spec.flag}`, spec.kind, fromFlag, cwd)
    }
  }
  Object.assign(options, applyTokenPlugin(options, cwd))
  if (input.requireTls === true && options['tlsCert'] === undefined) {
    throw new ConfigError(
      '--ssl-only needs --cert (with a certificate Gangway serves wss: only, so plain ws: is refused as websockify --ssl-only does)',
    )
  }
  // File addresses are validated even when a positional overrides them, like every other file value.
  const fileListen = fileAddress(file, 'listen', inFile)
  const fileTarget = fileAddress(file, 'target', inFile)
  const listenInFile =
    fileListen === undefined
      ? undefined
      : parseListen(fileListen, { label: `${inFile}: listen`, cwd })
  const targetInFile =
    fileTarget === undefined
      ? undefined
      : parseTarget(fileTarget, { label: `${inFile}: target`, cwd })
  const listen = input.listen === undefined ? listenInFile : parseListen(input.listen, { cwd })
  const target = input.target === undefined ? targetInFile : parseTarget(input.target, { cwd })
  if (warnings.length > 0) options['warnings'] = Object.freeze(warnings)
  return Object.freeze({
    warnings: Object.freeze(warnings),
    options: Object.freeze(options) as unknown as Omit<Config, 'listen' | 'target'>,
    listen: listen && Object.freeze(listen),
    target: target && Object.freeze(target),
  })
}

/** True when tokens or routes choose targets, so no TARGET is needed. */
export function hasTokenSource(options: Omit<Config, 'listen' | 'target'>): boolean {
  return (
    (options.routes?.size ?? 0) > 0 ||
    options.tokenFile !== undefined ||
    options.tokenDir !== undefined ||
    options.jwtKey !== undefined ||
    options.jwksUrl !== undefined ||
    options.tokenApi !== undefined ||
    options.tokenRedis !== undefined ||
    options.clientTargets
  )
}

/**
 * `resolveOptions`, then requires LISTEN, and TARGET unless tokens or routes choose targets: the frozen
 * `Config` the server runs with.
 * @throws {ConfigError} as `resolveOptions`, or `missing TARGET …` / `missing LISTEN …`.
 */
export function resolveConfig(input: ResolveInput): Config {
  const { options, listen, target } = resolveOptions(input)
  if (listen !== undefined && target === undefined && hasTokenSource(options)) {
    return Object.freeze({ listen, target, ...options })
  }
  if (listen === undefined && target === undefined) {
    throw new ConfigError('missing LISTEN and TARGET (usage: gangway [options] LISTEN TARGET)')
  }
  if (listen === undefined) {
    throw new ConfigError(
      'missing LISTEN (expected [host:]port or unix:/path, or "listen" in the config file)',
    )
  }
  if (target === undefined) {
    throw new ConfigError(
      'missing TARGET (expected host:port or unix:/path after LISTEN, or "target" in the config file)',
    )
  }
  return Object.freeze({ listen, target, ...options })
}

/** The file's keys with renamed ones (`RENAMED_KEYS`) under their new name, and a warning for each. */
function renameKeys(
  file: Record<string, unknown>,
  inFile: string,
  warnings: string[],
): Record<string, unknown> {
  const out = { ...file }
  for (const [old, now] of Object.entries(RENAMED_KEYS)) {
    if (!(old in out)) continue
    if (now in out)
      throw new ConfigError(`${inFile}: ${old} and ${now} are the same option: keep ${now}`)
    out[now] = out[old]
    delete out[old]
    warnings.push(`${inFile}: ${old} is now called ${now} (the per-tunnel idle close); rename it`)
  }
  return out
}

function withPrefix(prefix: string, kind: OptionKind, value: unknown, cwd: string): OptionValue {
  try {
    return parseOptionValue(kind, value, cwd)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    throw new ConfigError(`${prefix}: ${err.message}`, { cause: err })
  }
}

function fileAddress(
  file: Record<string, unknown>,
  key: 'listen' | 'target',
  inFile: string,
): string | undefined {
  const value = file[key]
  if (value === undefined) return undefined
  if (typeof value === 'string') return value
  const example = key === 'listen' ? '"127.0.0.1:6080"' : '"localhost:5900"'
  throw new ConfigError(
    `${inFile}: ${key}: expected a string such as ${example}, got ${describeValue(value)}`,
  )
}
