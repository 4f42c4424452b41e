/**
 * Issue 13, finding 4: with `--client-targets`, a token of a route with `tls: {ca, cert, key}` plus
 * `?address=tls://other:port` opened a tunnel that presented the route's client certificate to whatever
 * target the policy allowed (and a route's `insecure: true` turned verification off for it). A
 * client-named target gets the daemon-wide TLS settings only; the route keeps its identity for itself.
 */
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parseRoutes } from '../../src/config/routes.js'
import { startAccessTunnel } from '../helpers/access.js'
import { makeCa, makeCert, makeLeaf, type CertFiles } from '../helpers/certs.js'
import { createDisposer } from '../helpers/disposer.js'
import { startTlsTarget } from '../helpers/tls-target.js'
import { memoryLogger } from '../helpers/tunnel.js'
import { connectAndClose, openWs } from '../helpers/ws.js'

const d = createDisposer()
afterEach(() => d.run())

const TOKEN = 'route-token-for-the-identity-test'

let dir: string
let ca: CertFiles
let server: CertFiles
let client: CertFiles
let selfSigned: CertFiles
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gangway-route-identity-'))
  ca = await makeCa(dir, 'ca')
  server = await makeLeaf(dir, ca, 'target.test', 'server')
  client = await makeLeaf(dir, ca, 'gangway-client', 'client', { client: true, san: 'DNS:gangway' })
  selfSigned = await makeCert(dir, 'self-signed')
})
afterAll(() => rm(dir, { recursive: true, force: true }))

/** A TLS echo target that requires a client certificate signed by `ca`. */
async function mtlsTarget() {
  const target = await startTlsTarget({
    cert: server.pem,
    key: await readFile(server.key, 'utf8'),
    clientCa: ca.pem,
  })
  d.add(() => target.close())
  return target
}

describe("a route's TLS settings never reach a client-named target (issue 13, finding 4)", () => {
  it("the route's client certificate is not presented to another target", async () => {
    const own = await mtlsTarget()
    const other = await mtlsTarget()
    const routes = parseRoutes(
      {
        db: {
          target: `tls://127.0.0.1:${own.port}`,
          tokens: [TOKEN],
          tls: { ca: ca.cert, cert: client.cert, key: client.key },
        },
      },
      'routes',
    )
    const { url } = await startAccessTunnel(
      d,
      { routes, clientTargets: true, allow: [`127.0.0.1:${other.port}`], targetCa: ca.cert },
      memoryLogger(),
    )
    // The route itself, with its identity: relays.
    const ws = await openWs(d, `${url}?token=${TOKEN}`)
    ws.send(Buffer.from('own'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('own')
    expect((await own.accepted(0)).getPeerCertificate().subject.CN).toBe('gangway-client')

    // The same token naming another target: the daemon-wide settings only (no client certificate).
    const named = await connectAndClose(
      `${url}?token=${TOKEN}&address=tls://127.0.0.1:${other.port}`,
    )
    expect(named.code).toBe(4502)
    expect(other.sockets).toHaveLength(0)
  })

  it("the route's insecure: true does not turn verification off for another target", async () => {
    const own = await startTlsTarget({
      cert: selfSigned.pem,
      key: await readFile(selfSigned.key, 'utf8'),
    })
    d.add(() => own.close())
    const other = await startTlsTarget({
      cert: selfSigned.pem,
      key: await readFile(selfSigned.key, 'utf8'),
    })
    d.add(() => other.close())
    const routes = parseRoutes(
      { lab: { target: `tls://127.0.0.1:${own.port}`, tokens: [TOKEN], tls: { insecure: true } } },
      'routes',
    )
    const { url } = await startAccessTunnel(
      d,
      { routes, clientTargets: true, allow: [`127.0.0.1:${other.port}`] },
      memoryLogger(),
    )
    const ws = await openWs(d, `${url}?token=${TOKEN}`)
    ws.send(Buffer.from('lab'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('lab')

    const named = await connectAndClose(
      `${url}?token=${TOKEN}&address=tls://127.0.0.1:${other.port}`,
    )
    expect(named.code).toBe(4502)
    expect(named.reason).toMatch(/^target TLS failed/)
    expect(other.sockets).toHaveLength(0)
  })
})
