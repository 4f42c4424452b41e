/**
 * An XMPP login through gangway/node: xmpp.js (@xmpp/client), unmodified except that its TCP transport's
 * socket class is the tunnel's, against a real Prosody. SCRAM-SHA-1 login, resource binding, and a message
 * to ourselves that comes back through the server.
 */
import { once } from 'node:events'
import { client, xml, type Element } from '@xmpp/client'
import ConnectionTCP from '@xmpp/tcp/lib/Connection.js'
import { afterEach, describe, expect, it } from 'vitest'
import { createDisposer } from '../helpers/disposer.js'
import { startProsody } from '../helpers/prosody.js'
import { NodeWebSocket } from '../helpers/shim.js'
import { startTunnel, tcpTarget } from '../helpers/tunnel.js'
import { TunnelNetSocket } from '../../web/node/index.js'

const d = createDisposer()
afterEach(() => d.run())

describe('XMPP through the tunnel', () => {
  it('logs in to a real Prosody and exchanges a message', async () => {
    const prosody = await startProsody()
    d.add(() => prosody.close())
    const server = await startTunnel(d, tcpTarget(prosody.port))
    const url = server.url()

    // xmpp.js does `new this.Socket()` then `socket.connect({ port, host })`: hand it the tunnel's socket.
    const original = Object.getOwnPropertyDescriptor(ConnectionTCP.prototype, 'Socket')
    ConnectionTCP.prototype.Socket = class XmppTunnelSocket extends TunnelNetSocket {
      constructor() {
        super({ url, WebSocket: NodeWebSocket, address: '' })
      }
    }
    d.add(() => {
      if (original) Object.defineProperty(ConnectionTCP.prototype, 'Socket', original)
      else delete ConnectionTCP.prototype.Socket
    })

    const xmpp = client({
      service: 'xmpp://xmpp.example:5222', // the daemon decides where the tunnel goes
      domain: prosody.domain,
      resource: 'gangway',
      username: prosody.username,
      password: prosody.password,
    })
    xmpp.on('error', () => {})
    d.add(() => xmpp.stop().catch(() => {}))
    const jid = await xmpp.start()
    expect(jid.toString()).toBe(`${prosody.username}@${prosody.domain}/gangway`)

    const incoming = new Promise<Element>((resolve) =>
      xmpp.on('stanza', (stanza: Element) => {
        if (stanza.name === 'message') resolve(stanza)
      }),
    )
    await xmpp.send(
      xml('message', { to: jid.toString(), type: 'chat' }, xml('body', {}, 'hello ✓')),
    )
    expect((await incoming).getChildText('body')).toBe('hello ✓')
    const offline = once(xmpp, 'offline')
    await xmpp.stop()
    await offline
  })
})
