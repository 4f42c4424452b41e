/**
 * The deploy kit, checked with what runs here: Debian's systemd-analyze on the unit (verify, and the
 * security score), and the Dockerfile and Kubernetes manifests read as data (no Docker engine or cluster
 * here; see deploy/README.md for what is not run).
 */
import { execFile } from 'node:child_process'
import { copyFile, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { hasTokenSource, resolveConfig } from '../../src/config/options.js'
import { REPO_ROOT } from '../cli/gangway-process.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'

const run = promisify(execFile)
const d = createDisposer()
afterEach(() => d.run())

const deploy = (file: string) => readFile(join(REPO_ROOT, 'deploy', file), 'utf8')
const haveSystemdAnalyze = await run('systemd-analyze', ['--version']).then(
  () => true,
  () => false,
)

describe('systemd unit', () => {
  it.runIf(haveSystemdAnalyze)(
    'passes systemd-analyze verify and scores 2.5 or less in security',
    async () => {
      const dir = await tempDir(d, 'gangway-unit-')
      const unit = join(dir, 'gangway.service')
      await copyFile(join(REPO_ROOT, 'deploy/gangway.service'), unit)
      const verify = await run('systemd-analyze', ['verify', unit]).catch(
        (err: { stderr: string }) => err,
      )
      expect(verify.stderr).toBe('')
      const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', unit])
      const score = Number(
        /Overall exposure level for gangway\.service: ([\d.]+)/.exec(stdout)?.[1],
      )
      expect(score).toBeLessThanOrEqual(2.5)
    },
  )

  it('does not restart-loop on a config error, checks the config before reload, documents itself', async () => {
    const unit = await deploy('gangway.service')
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m)
    const reloads = [...unit.matchAll(/^ExecReload=(.*)$/gm)].map((m) => m[1])
    expect(reloads[0]).toMatch(/gangway\.js check --config /)
    expect(reloads.at(-1)).toMatch(/kill -HUP \$MAINPID/)
    expect(unit).toMatch(/^ReadWritePaths=\/var\/lib\/gangway$/m)
    expect(unit).toMatch(/useradd --system/)
    expect(unit).toMatch(/Debian 12's `nodejs` package is\n# 18/)
    const docs = /^Documentation=(.*)$/m.exec(unit)?.[1]?.split(' ') ?? []
    expect(docs.length).toBeGreaterThan(0)
    for (const url of docs) {
      // file:///opt/gangway/docs/x.md is the repository's docs/x.md, installed with the rest.
      const path = url.replace('file:///opt/gangway/', '')
      expect((await stat(join(REPO_ROOT, path))).isFile(), url).toBe(true)
    }
  })
})

describe('Dockerfile', () => {
  it('builds on a supported Node LTS, has a health check, stops with SIGTERM, ignores the clutter', async () => {
    const file = await deploy('Dockerfile')
    const bases = [...file.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])
    for (const base of bases) expect(base).toMatch(/^node:(22|24)-/)
    expect(file).toMatch(/^HEALTHCHECK .*\n? *CMD .*\/healthz/m)
    expect(file).toMatch(/^STOPSIGNAL SIGTERM$/m)
    expect(file).toMatch(/--stop-timeout 45/)
    expect(file).toMatch(/--admin 0\.0\.0\.0:9090/)
    const ignore = (await readFile(join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n')
    for (const entry of ['**/node_modules', '.git', 'test']) expect(ignore).toContain(entry)
    // Nothing the Dockerfile copies is ignored.
    for (const [, source] of file.matchAll(/^COPY (?!--from)(\S+)/gm)) {
      expect(ignore, source).not.toContain(source)
    }
  })
})

describe('Kubernetes manifests', () => {
  it('have a PodDisruptionBudget, a NetworkPolicy, a config checksum, memory consistent with maxConnections, a safe sample config', async () => {
    const docs = parseAllDocuments(await deploy('kubernetes/gangway.yaml')).map(
      (doc) =>
        doc.toJS() as {
          kind: string
          apiVersion: string
          metadata: { name: string }
          [k: string]: unknown
        },
    )
    for (const doc of docs) {
      expect(doc.apiVersion).toBeTruthy()
      expect(doc.metadata.name).toBe('gangway')
    }
    const byKind = new Map(docs.map((doc) => [doc.kind, doc as unknown]))
    expect([...byKind.keys()].sort()).toEqual(
      ['ConfigMap', 'Deployment', 'NetworkPolicy', 'PodDisruptionBudget', 'Service'].sort(),
    )
    const deployment = byKind.get('Deployment') as Deployment
    const template = deployment.spec.template
    expect(template.metadata.annotations['checksum/config']).toBeTruthy()
    const container = template.spec.containers[0]!
    const portNames = container.ports.map((p) => p.name)
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(portNames).toContain(probe.httpGet.port)
    }

    // The sample config is one Gangway accepts, and not an open relay.
    const text = (byKind.get('ConfigMap') as { data: Record<string, string> }).data['gangway.yaml']!
    const config = resolveConfig({
      file: parseYaml(text) as Record<string, unknown>,
      fileName: 'configmap',
      flags: {},
    })
    expect(config.target).toBeUndefined()
    expect(hasTokenSource(config)).toBe(true)
    expect(config.clientTargets).toBe(false)
    // Admin never on all interfaces in plain HTTP; trustProxy narrower than a /16.
    expect(config.admin).toMatch(/^127\.0\.0\.1:|^\[::1\]:|^unix:/)
    for (const cidr of config.trustProxy!.split(','))
      expect(Number(cidr.split('/')[1] ?? 32)).toBeGreaterThanOrEqual(16)
    // Memory: every tunnel a slow reader (~1.1 MiB held, docs/benchmark.md) plus ~100 MiB must fit the limit.
    const limit = container.resources.limits.memory
    const limitMiB =
      Number(/^(\d+)Gi$/.exec(limit)?.[1] ?? NaN) * 1024 || Number(/^(\d+)Mi$/.exec(limit)?.[1])
    expect(config.maxConnections).toBeGreaterThan(0)
    expect(config.maxConnections * 1.1 + 100).toBeLessThanOrEqual(limitMiB)
    expect(config.drainTimeoutMs / 1000 + 30).toBeLessThanOrEqual(
      template.spec.terminationGracePeriodSeconds,
    )

    const pdb = byKind.get('PodDisruptionBudget') as {
      spec: { selector: { matchLabels: unknown } }
    }
    expect(pdb.spec.selector.matchLabels).toEqual({ app: 'gangway' })
    const policy = (byKind.get('NetworkPolicy') as { spec: NetworkPolicySpec }).spec
    expect(policy.policyTypes).toContain('Ingress')
    const allowedPorts = policy.ingress.flatMap((rule) => rule.ports.map((p) => p.port))
    expect(allowedPorts).toEqual([6080])
  })
})

interface Probe {
  httpGet: { path: string; port: string }
}
interface Deployment {
  spec: {
    template: {
      metadata: { annotations: Record<string, string> }
      spec: {
        terminationGracePeriodSeconds: number
        containers: Array<{
          ports: Array<{ name: string }>
          readinessProbe: Probe
          livenessProbe: Probe
          resources: { limits: { memory: string } }
        }>
      }
    }
  }
}
interface NetworkPolicySpec {
  policyTypes: string[]
  ingress: Array<{ ports: Array<{ port: number }> }>
}
