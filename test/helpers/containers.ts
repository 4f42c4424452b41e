/**
 * @module test/helpers/containers
 * Real services in containers for tests, through testcontainers and the engine `scripts/test-env.sh`
 * prepared (podman's Docker API, or a real Docker). Images are local (`localhost/gangway-test-*`), built by
 * that script: nothing is pulled. Ports are published on 127.0.0.1 only. Import testcontainers only
 * through this module: the environment below must be set before testcontainers first looks at it.
 */
import { existsSync } from 'node:fs'
import type * as Testcontainers from 'testcontainers'

/** Where `scripts/test-env.sh` serves podman's Docker-compatible API. */
export const PODMAN_DOCKER_HOST = 'unix:///run/podman/podman.sock'

/** Label naming the test process that owns a container; `test-env.sh` keeps those of live processes. */
const PID_LABEL = 'gangway.test.pid'

configureContainerEnv()

/**
 * Points testcontainers at the engine: `DOCKER_HOST` if set, else `/var/run/docker.sock` if present,
 * else the podman socket. Ryuk is off (its image would come from a registry; `test-env.sh` removes leftovers
 * instead) and the host is 127.0.0.1 (`/.dockerenv` would otherwise make testcontainers pick the bridge
 * gateway). Values already in the environment win.
 */
function configureContainerEnv(): void {
  const env = process.env
  if (env.DOCKER_HOST === undefined && !existsSync('/var/run/docker.sock')) {
    env.DOCKER_HOST = PODMAN_DOCKER_HOST
  }
  env.TESTCONTAINERS_RYUK_DISABLED ??= 'true'
  env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1'
}

interface Runtime {
  readonly tc: typeof Testcontainers
  readonly LoopbackContainer: new (image: string) => Testcontainers.GenericContainer
}

let runtime: Promise<Runtime> | undefined

/** Loads testcontainers on first use. A dynamic import, so the environment above is set before it. */
function loadRuntime(): Promise<Runtime> {
  runtime ??= importRuntime()
  return runtime
}

async function importRuntime(): Promise<Runtime> {
  const tc = await import('testcontainers')

  /** Publishes exposed ports on 127.0.0.1 only (the default, HostIp "", holds them on 0.0.0.0). */
  class LoopbackContainer extends tc.GenericContainer {
    override withExposedPorts(...ports: Testcontainers.PortWithOptionalBinding[]): this {
      super.withExposedPorts(...ports)
      const bindings = (this.hostConfig.PortBindings ?? {}) as Record<string, object[]>
      this.hostConfig.PortBindings = Object.fromEntries(
        Object.entries(bindings).map(([port, list]) => [
          port,
          list.map((binding) => ({ ...binding, HostIp: '127.0.0.1' })),
        ]),
      )
      return this
    }
  }
  return { tc, LoopbackContainer }
}

/** A started service: where to connect, and how to get rid of it. */
export interface ContainerService {
  /** Always 127.0.0.1. */
  readonly host: string
  /** The host port mapped to the service's port. */
  readonly port: number
  /** Stops and removes the container; safe to call twice. */
  stop(): Promise<void>
}

export interface ServiceSpec {
  /** A local image built by `scripts/test-env.sh`, e.g. `localhost/gangway-test-redis:7`. */
  readonly image: string
  /** The port the service listens on inside the container. */
  readonly port: number
  /** A log line printed once the service accepts connections (never a health check: podman needs systemd). */
  readonly ready: RegExp
  readonly environment?: Record<string, string>
  readonly command?: string[]
  /** Files written into the container before it starts (certificates, configs). */
  readonly files?: ReadonlyArray<{ content: string; target: string; mode?: number }>
}

/** Starts a container from a local image and waits for its ready log line. */
export async function startService(spec: ServiceSpec): Promise<ContainerService> {
  const { tc, LoopbackContainer } = await loadRuntime()
  let container = new LoopbackContainer(spec.image)
    .withExposedPorts(spec.port)
    .withEnvironment(spec.environment ?? {})
    .withLabels({ [PID_LABEL]: String(process.pid) })
    .withWaitStrategy(tc.Wait.forLogMessage(spec.ready))
    .withStartupTimeout(60_000)
  if (spec.command !== undefined) container = container.withCommand(spec.command)
  if (spec.files !== undefined) container = container.withCopyContentToContainer([...spec.files])
  const started = await container.start()
  let stopping: Promise<unknown> | undefined
  return {
    host: started.getHost(),
    port: started.getMappedPort(spec.port),
    async stop() {
      stopping ??= started.stop() // SIGKILL and remove: test data is thrown away anyway
      await stopping
    },
  }
}

/** Redis 7 (Debian's redis-server, no persistence, protected mode off) on a loopback port. */
export function startRedis(): Promise<ContainerService> {
  return startService({
    image: 'localhost/gangway-test-redis:7',
    port: 6379,
    ready: /Ready to accept connections/,
  })
}

/** PostgreSQL 15 (Debian's postgresql-15; user, password and database `test`) on a loopback port. */
export function startPostgres(): Promise<ContainerService> {
  return startService({
    image: 'localhost/gangway-test-postgres:15',
    port: 5432,
    ready: /database system is ready to accept connections/,
    environment: { POSTGRES_USER: 'test', POSTGRES_PASSWORD: 'test', POSTGRES_DB: 'test' },
  })
}

/**
 * Redis 7 speaking only TLS (Debian's redis-server is built with TLS) on a loopback port, with the given
 * server certificate and key; clients must present a certificate signed by `clientCa` (redis's default).
 */
export function startTlsRedis(tls: {
  cert: string
  key: string
  clientCa: string
}): Promise<ContainerService> {
  const dir = '/tmp/tls'
  return startService({
    image: 'localhost/gangway-test-redis:7',
    port: 6379,
    ready: /Ready to accept connections/,
    environment: { PORT: '0' },
    files: [
      { content: tls.cert, target: `${dir}/server.crt`, mode: 0o644 },
      { content: tls.key, target: `${dir}/server.key`, mode: 0o644 },
      { content: tls.clientCa, target: `${dir}/ca.crt`, mode: 0o644 },
    ],
    command: [
      '--tls-port',
      '6379',
      '--tls-cert-file',
      `${dir}/server.crt`,
      '--tls-key-file',
      `${dir}/server.key`,
      '--tls-ca-cert-file',
      `${dir}/ca.crt`,
    ],
  })
}
