// The parts of xmpp.js (@xmpp/client, which ships no types) the XMPP test uses.
declare module '@xmpp/client' {
  import type { EventEmitter } from 'node:events'
  export interface Element {
    name: string
    attrs: Record<string, string>
    getChildText(name: string): string | null
    toString(): string
  }
  export interface XmppClient extends EventEmitter {
    start(): Promise<{ toString(): string }>
    stop(): Promise<void>
    send(element: Element): Promise<void>
  }
  export function client(options: {
    service: string
    domain: string
    resource?: string
    username: string
    password: string
  }): XmppClient
  export function xml(name: string, attrs?: Record<string, string>, ...children: unknown[]): Element
}

declare module '@xmpp/tcp/lib/Connection.js' {
  const ConnectionTCP: { prototype: { Socket: unknown } }
  export default ConnectionTCP
}
