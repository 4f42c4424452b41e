/**
 * A real Redis 7 that speaks only TLS and requires client certificates (in a container built by
 * scripts/test-env.sh), reached as a tls:// target: ioredis through gangway/node, unmodified.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { startTlsRedis, type ContainerService } from '../helpers/containers.js'
import { makeCa, makeLeaf, type CertFiles } from '../helpers/certs.js'
import { blobRoundTrip, redisThroughTunnel } from '../helpers/redis-client.js'
import { memoryLogger, startTunnel } from '../helpers/tunnel.js'
import { connectAndClose } from '../helpers/ws.js'
import type { Target } from '../../src/config/options.js'

const d = createDisposer()
afterEach(() => d.run())

describe('Redis over TLS with client certificates, as a tls:// target', () => {
  let dir: string
  let ca: CertFiles
  let client: CertFiles
  let redis: ContainerService
  let target: Target
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gangway-redis-tls-'))
    ca = await makeCa(dir)
    const server = await makeLeaf(dir, ca, 'redis', 'server')
    client = await makeLeaf(dir, ca, 'gangway', 'client', { client: true, san: 'DNS:gangway' })
    redis = await startTlsRedis({
      cert: server.pem,
      key: await readFile(server.key, 'utf8'),
      clientCa: ca.pem,
    })
    target = { kind: 'tcp', host: redis.host, port: redis.port, tls: true }
  })
  afterAll(async () => {
    await redis?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('ioredis: commands and a 16 MiB value arrive intact through the verified, mutual TLS leg', async () => {
    const server = await startTunnel(d, target, {
      targetCa: ca.cert,
      targetCert: client.cert,
      targetKey: client.key,
    })
    const redisClient = await redisThroughTunnel(d, server.url())
    expect(await redisClient.ping()).toBe('PONG')
    const blob = await blobRoundTrip(redisClient, 'blob', 16 * 1024 * 1024)
    expect(blob.back).toBe(blob.sent)
    expect(await redisClient.quit()).toBe('OK')
  })

  it('without a client certificate Redis rejects the handshake: 4502 before the tunnel opens', async () => {
    const logger = memoryLogger()
    const server = await startTunnel(d, target, { targetCa: ca.cert }, logger)
    const result = await connectAndClose(server.url())
    expect(result.code).toBe(4502)
    expect(result.reason).toMatch(/^target TLS failed: /)
    expect((await logger.waitFor('tunnel refused')).fields['reason']).toMatch(
      /^TLS handshake with tls:\/\/127\.0\.0\.1:\d+ failed: /,
    )
    expect(logger.lines.some((l) => l.msg === 'tunnel open')).toBe(false)
  })
})
