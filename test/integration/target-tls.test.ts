import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import WebSocket from 'ws'
import { createDisposer } from '../helpers/disposer.js'
import { makeCa, makeCert, makeLeaf, type CertFiles } from '../helpers/certs.js'
import { Digest, randomChunks, sendChunks } from '../helpers/data.js'
import { pushAndReceive } from '../helpers/peers.js'
import { startEchoServer, startTcpServer } from '../helpers/tcp.js'
import { startTlsTarget } from '../helpers/tls-target.js'
import { memoryLogger, startTunnel } from '../helpers/tunnel.js'
import { startAccessTunnel } from '../helpers/access.js'
import { closed, connectAndClose, openWs } from '../helpers/ws.js'
import { rawRequest, upgradeRequest } from '../helpers/raw-http.js'
import { parseRoutes } from '../../src/config/routes.js'
import type { Target } from '../../src/config/options.js'

const MiB = 1024 * 1024
const TOTAL = 16 * MiB

const d = createDisposer()
afterEach(() => d.run())

/** One CA, a server leaf for 127.0.0.1/::1/localhost, a client leaf, and a second CA nobody uses. */
let dir: string
let ca: CertFiles
let server: CertFiles
let client: CertFiles
let otherCa: CertFiles
let selfSigned: CertFiles
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gangway-target-tls-'))
  ca = await makeCa(dir, 'ca')
  otherCa = await makeCa(dir, 'other-ca')
  server = await makeLeaf(dir, ca, 'target.test', 'server')
  client = await makeLeaf(dir, ca, 'gangway-client', 'client', { client: true, san: 'DNS:gangway' })
  selfSigned = await makeCert(dir, 'self-signed')
})
afterAll(() => rm(dir, { recursive: true, force: true }))

function tlsTarget(port: number, host = '127.0.0.1'): Target {
  return { kind: 'tcp', host, port, tls: true }
}

async function echoTarget(host = '127.0.0.1', clientCa?: string) {
  const target = await startTlsTarget({
    cert: server.pem,
    key: await readKey(server),
    host,
    ...(clientCa === undefined ? {} : { clientCa }),
  })
  d.add(() => target.close())
  return target
}

function hashMessages(ws: WebSocket): Digest {
  const digest = new Digest()
  ws.on('message', (data: Buffer) => digest.update(data))
  return digest
}

/** Route `db` (token `route-token-0123456789`) to tls://127.0.0.1:`port`, verified as db.example.net. */
function servernameRoute(port: number) {
  return parseRoutes(
    {
      db: {
        target: `tls://127.0.0.1:${port}`,
        tokens: ['route-token-0123456789'],
        tls: { ca: ca.cert, servername: 'db.example.net' },
      },
    },
    'routes',
  )
}

describe('tls:// targets', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`relays 16 MiB each way, byte-exact, to a CA-verified target on ${host}`, async () => {
      let targetDone: Promise<{ sent: Digest; got: Digest }> | undefined
      const target = await startTlsTarget({
        cert: server.pem,
        key: await readKey(server),
        host,
        onSocket(socket) {
          targetDone = pushAndReceive(socket, TOTAL, MiB)
        },
      })
      d.add(() => target.close())
      const logger = memoryLogger()
      const tunnel = await startTunnel(
        d,
        tlsTarget(target.port, host),
        { targetCa: ca.cert },
        logger,
      )
      // Listen before 'open': the target speaks at once, and its first bytes may share the 101's packet.
      const ws = new WebSocket(tunnel.url(), { perMessageDeflate: false })
      d.add(() => ws.terminate())
      const received = hashMessages(ws)
      const wsClosed = closed(ws)
      await once(ws, 'open')
      const sent = await sendChunks(ws, randomChunks(TOTAL, MiB))
      expect((await wsClosed).code).toBe(1000)
      const far = await targetDone!
      expect(far.got.bytes).toBe(TOTAL)
      expect(far.got.hex()).toBe(sent.hex())
      expect(received.bytes).toBe(TOTAL)
      expect(received.hex()).toBe(far.sent.hex())
      const open = await logger.waitFor('tunnel open')
      const shown = host.includes(':') ? `[${host}]` : host
      expect(open.fields['target']).toBe(`tls://${shown}:${target.port}`)
    })
  }

  it('refuses with 4502 before accepting when the target’s certificate is from another CA', async () => {
    const target = await echoTarget()
    const logger = memoryLogger()
    const tunnel = await startTunnel(d, tlsTarget(target.port), { targetCa: otherCa.cert }, logger)
    const result = await connectAndClose(tunnel.url())
    expect(result).toMatchObject({
      code: 4502,
      reason: 'target TLS failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    })
    const refused = await logger.waitFor('tunnel refused')
    expect(refused.fields['reason']).toMatch(
      /^TLS handshake with tls:\/\/127\.0\.0\.1:\d+ failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE/,
    )
    expect(logger.lines.some((l) => l.msg === 'tunnel open')).toBe(false)
    expect(target.sockets).toHaveLength(0) // the target saw our alert, never a verified session
  })

  it('answers 502 with --refuse-with http, and never upgrades', async () => {
    const target = await echoTarget()
    const tunnel = await startTunnel(d, tlsTarget(target.port), { refuseWith: 'http' }) // Node's roots
    const port = (tunnel.address() as { port: number }).port
    const response = await rawRequest(port, upgradeRequest())
    expect(response).toMatch(/^HTTP\/1\.1 502 /)
    expect(response).toContain('target TLS failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE')
  })

  it('refuses a target whose certificate does not name the route’s servername', async () => {
    const target = await echoTarget()
    const logger = memoryLogger()
    const routes = servernameRoute(target.port)
    const tunnel = await startAccessTunnel(d, { routes }, logger)
    const result = await connectAndClose(`${tunnel.url}?token=route-token-0123456789`)
    expect(result).toMatchObject({
      opened: true,
      code: 4502,
      reason: 'target TLS failed: ERR_TLS_CERT_ALTNAME_INVALID',
    })
    expect(logger.lines.some((l) => l.msg === 'tunnel open')).toBe(false)
  })

  it('verifies against the route’s servername when it is in the certificate (SNI sent)', async () => {
    const named = await makeLeaf(dir, ca, 'db.example.net', 'named', { san: 'DNS:db.example.net' })
    let sni: string | false | undefined
    const target = await startTlsTarget({
      cert: named.pem,
      key: await readKey(named),
      onSocket(socket) {
        sni = (socket as unknown as { servername: string | false }).servername
        socket.pipe(socket)
      },
    })
    d.add(() => target.close())
    const routes = servernameRoute(target.port)
    const tunnel = await startAccessTunnel(d, { routes }, memoryLogger())
    const ws = await openWs(d, `${tunnel.url}?token=route-token-0123456789`)
    ws.send(Buffer.from('ping'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('ping')
    expect(sni).toBe('db.example.net')
  })

  it('insecure accepts a self-signed certificate, and says so in the log at startup', async () => {
    const target = await startTlsTarget({ cert: selfSigned.pem, key: await readKey(selfSigned) })
    d.add(() => target.close())
    const logger = memoryLogger()
    const tunnel = await startTunnel(d, tlsTarget(target.port), { targetInsecure: true }, logger)
    expect(logger.lines.find((l) => l.level === 'warn')?.msg).toMatch(/NOT verified/)
    const ws = await openWs(d, tunnel.url())
    ws.send(Buffer.from('lab'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('lab')
  })

  it('mTLS: refused (4502) without a client certificate, relays with one', async () => {
    const target = await echoTarget('127.0.0.1', ca.pem)
    const without = await startTunnel(d, tlsTarget(target.port), { targetCa: ca.cert })
    const refused = await connectAndClose(without.url())
    expect(refused.code).toBe(4502)
    // TLS 1.3: the target's refusal comes after our side of the handshake is done; the dial waited for it.
    expect(refused.reason).toBe('target TLS failed: ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    expect(target.sockets).toHaveLength(0)

    const withCert = await startTunnel(d, tlsTarget(target.port), {
      targetCa: ca.cert,
      targetCert: client.cert,
      targetKey: client.key,
    })
    const ws = await openWs(d, withCert.url())
    ws.send(Buffer.from('mutual'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('mutual')
    const peer = (await target.accepted(0)).getPeerCertificate()
    expect(peer.subject.CN).toBe('gangway-client')
  })

  it('refuses a target that does not speak TLS (4502), and times out a silent one (4504)', async () => {
    const plain = await startEchoServer() // echoes our ClientHello back: not a TLS record
    d.add(() => plain.close())
    const logger = memoryLogger()
    const toPlain = await startTunnel(d, tlsTarget(plain.port), {}, logger)
    const result = await connectAndClose(toPlain.url())
    expect(result.code).toBe(4502)
    expect(result.reason).toMatch(/^target TLS failed: ERR_SSL_/)

    const silent = await startTcpServer() // accepts, never answers the ClientHello
    d.add(() => silent.close())
    const silentLogger = memoryLogger()
    const toSilent = await startTunnel(
      d,
      tlsTarget(silent.port),
      { connectTimeoutMs: 200 },
      silentLogger,
    )
    const timedOut = await connectAndClose(toSilent.url())
    expect(timedOut.code).toBe(4504)
    const line = await silentLogger.waitFor('tunnel refused')
    expect(line.fields['reason']).toMatch(/^TLS handshake with tls:\/\/127\.0\.0\.1:\d+ timed out/)
  })

  it('token files name tls:// targets; the daemon-wide CA verifies them', async () => {
    const target = await echoTarget()
    const tokens = join(dir, `tokens-${target.port}`)
    await writeFile(tokens, `lab-token-0001: tls://127.0.0.1:${target.port}\n`)
    const logger = memoryLogger()
    const tunnel = await startAccessTunnel(d, { tokenFile: tokens, targetCa: ca.cert }, logger)
    const ws = await openWs(d, `${tunnel.url}?token=lab-token-0001`)
    ws.send(Buffer.from('from a token'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('from a token')
    expect((await logger.waitFor('tunnel open')).fields['target']).toBe(
      `tls://127.0.0.1:${target.port}`,
    )
  })

  it('a token’s tls:// target still goes through the policy, and is dialled at the checked address', async () => {
    const target = await echoTarget()
    const tokens = await mkdtemp(join(dir, 'token-dir-'))
    await writeFile(join(tokens, 'app-token-0001'), `tls://localhost:${target.port}`)
    await writeFile(join(tokens, 'app-token-0002'), `tls://localhost:${target.port + 1}`)
    const logger = memoryLogger()
    const tunnel = await startAccessTunnel(
      d,
      { tokenDir: tokens, targetCa: ca.cert, allow: [`localhost:${target.port}`] },
      logger,
    )
    const ws = await openWs(d, `${tunnel.url}?token=app-token-0001`)
    ws.send(Buffer.from('checked'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('checked')
    expect((await connectAndClose(`${tunnel.url}?token=app-token-0002`)).code).toBe(4403)
  })

  it('a JWT naming a tls:// route gets the route’s TLS settings; a JWT target claim gets the defaults', async () => {
    const target = await echoTarget()
    const secret = 'an-hmac-secret-that-is-long-enough-0123456789'
    const keyFile = join(dir, `jwt-secret-${target.port}`)
    await writeFile(keyFile, secret)
    const routes = parseRoutes(
      { lab: { target: `tls://127.0.0.1:${target.port}`, tls: { ca: ca.cert } } },
      'routes',
    )
    const logger = memoryLogger()
    const tunnel = await startAccessTunnel(
      d,
      { routes, jwtKey: keyFile, allow: [`127.0.0.1:${target.port}`] }, // no --target-ca
      logger,
    )
    const sign = (target: string) =>
      new SignJWT({ target, exp: Math.floor(Date.now() / 1000) + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(new TextEncoder().encode(secret))
    const ws = await openWs(d, `${tunnel.url}?token=${await sign('lab')}`)
    ws.send(Buffer.from('route settings'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('route settings')
    // The same target named in the claim: the daemon-wide settings (Node's roots) do not know our CA.
    const direct = await connectAndClose(
      `${tunnel.url}?token=${await sign(`tls://127.0.0.1:${target.port}`)}`,
    )
    expect(direct).toMatchObject({
      code: 4502,
      reason: 'target TLS failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    })
  })

  it('a client that leaves during the TLS handshake aborts it: the target connection is closed', async () => {
    const silent = await startTcpServer() // accepts, never answers the ClientHello
    d.add(() => silent.close())
    const logger = memoryLogger()
    const tunnel = await startTunnel(d, tlsTarget(silent.port), {}, logger)
    const ws = new WebSocket(tunnel.url(), { perMessageDeflate: false })
    ws.on('error', () => {})
    const far = await silent.accepted(0)
    await once(far, 'data') // the ClientHello: the handshake is under way
    ws.terminate()
    await once(far, 'close')
    const line = await logger.waitFor('client left before the target answered')
    expect(line.fields['target']).toBe(`tls://127.0.0.1:${silent.port}`)
    expect(tunnel.stats()).toMatchObject({ tunnels: 0, dialing: 0 })
  })

  it('sends the PROXY header in clear before the TLS handshake', async () => {
    const { TLSSocket } = await import('node:tls')
    const key = await readKey(server)
    let header = ''
    const secured: Promise<void>[] = []
    const raw = await startTcpServer((socket) => {
      socket.once('readable', function onHeader() {
        // A v1 header is one CRLF-terminated line; what follows is the ClientHello.
        const first = socket.read() as Buffer
        const end = first.indexOf('\r\n') + 2
        header = first.subarray(0, end).toString('latin1')
        socket.unshift(first.subarray(end))
        const secure = new TLSSocket(socket, { isServer: true, cert: server.pem, key })
        secure.on('error', () => {})
        secured.push(once(secure, 'secure').then(() => void secure.pipe(secure)))
      })
    })
    d.add(() => raw.close())
    const tunnel = await startTunnel(d, tlsTarget(raw.port), {
      targetCa: ca.cert,
      targetProxyProtocol: 'v1',
    })
    const ws = await openWs(d, tunnel.url())
    ws.send(Buffer.from('after the header'))
    const [reply] = (await once(ws, 'message')) as [Buffer]
    expect(reply.toString()).toBe('after the header')
    expect(header).toMatch(/^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n$/)
  })
})

async function readKey(files: CertFiles): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  return readFile(files.key, 'utf8')
}
