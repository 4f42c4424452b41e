/**
 * Regression: a Redis blip turned `/readyz` 503 on every node at once (`shared state unreachable`); with the
 * shipped Kubernetes probe the Service lost every endpoint, including for traffic that needs no token.
 * Readiness answers "can this node take new tunnels": a node without its shared state stays ready (it
 * refuses what it cannot check, 4503, by itself) and reports the degraded state in `/readyz`, `/healthz`,
 * `gangway_state_up` and one log line. Two in-process nodes reach a real redis-server through a relay that
 * the test cuts (the blip) and restores.
 */
import { readFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { parseRoutes } from '../../src/config/routes.js'
import { createAdminServer } from '../../src/ops/admin.js'
import { createMetrics } from '../../src/ops/metrics.js'
import { startCuttableRelay, startNode } from '../helpers/cluster.js'
import { createDisposer } from '../helpers/disposer.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { startEchoServer } from '../helpers/tcp.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

async function probe(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('readiness during a Redis blip', () => {
  it('keeps every node ready, and reports the degraded shared state instead', async () => {
    const redis = await startRedisServer(d)
    const relay = await startCuttableRelay(redis.port)
    d.add(() => relay.close())
    const echo = await startEchoServer()
    d.add(() => echo.close())
    const routes = parseRoutes(
      { echo: { target: `127.0.0.1:${echo.port}`, tokens: ['blip-token-0123'] } },
      'routes',
      process.cwd(),
    )
    const url = `redis://127.0.0.1:${relay.port}/0`
    const nodes = []
    for (let i = 0; i < 2; i++) {
      const logger = memoryLogger()
      const metrics = createMetrics({ defaultMetrics: false })
      const node = await startNode(d, url, { routes }, logger, {
        prefix: 'blip:',
        registry: metrics.registry,
      })
      const admin = createAdminServer(
        { kind: 'tcp', host: '127.0.0.1', port: 0 },
        node.server,
        metrics,
        {
          state: node.state,
        },
      )
      await admin.listen()
      d.add(() => admin.close())
      const base = `http://127.0.0.1:${(admin.address() as { port: number }).port}`
      nodes.push({ node, logger, base, metrics })
    }
    for (const { base } of nodes) {
      expect(await probe(`${base}/readyz`)).toEqual({
        status: 200,
        body: { status: 'ready', tunnels: 0, sharedState: 'ok' },
      })
    }

    await relay.cut()
    for (const { node, logger, base, metrics } of nodes) {
      await logger.waitFor('shared state unreachable: new tunnels with tokens are refused (4503)')
      expect(await probe(`${base}/readyz`)).toEqual({
        status: 200,
        body: { status: 'ready', tunnels: 0, sharedState: 'unreachable' },
      })
      const health = await probe(`${base}/healthz`)
      expect(health.status).toBe(200)
      expect(health.body).toMatchObject({ status: 'degraded', sharedState: 'unreachable' })
      expect(await metrics.registry.metrics()).toMatch(/^gangway_state_up 0$/m)
      expect(await connectAndClose(`${node.url}?token=blip-token-0123`)).toMatchObject({
        code: 4503,
      })
    }

    await relay.restore()
    for (const { logger, base } of nodes) {
      await logger.waitFor('shared state reachable again')
      const health = await probe(`${base}/healthz`)
      expect(health.body).toMatchObject({ status: 'ok', sharedState: 'ok' })
    }
  })
})

describe('the shipped Kubernetes probes', () => {
  it('tolerate a blip: more than one missed readiness answer before the pod leaves the Service', async () => {
    const text = await readFile(
      new URL('../../deploy/kubernetes/gangway.yaml', import.meta.url),
      'utf8',
    )
    const docs = parseAllDocuments(text).map((doc) => doc.toJS() as Record<string, unknown>)
    const deployment = docs.find((doc) => doc['kind'] === 'Deployment') as {
      spec: { template: { spec: { containers: Record<string, Record<string, number>>[] } } }
    }
    const container = deployment.spec.template.spec.containers[0]!
    for (const probe of [container['readinessProbe']!, container['livenessProbe']!]) {
      expect(probe['failureThreshold']).toBeGreaterThanOrEqual(3)
      // Kubernetes' default timeout is 1 s: a busy node's answer may take longer than that.
      expect(probe['timeoutSeconds']).toBeGreaterThanOrEqual(2)
    }
  })
})
