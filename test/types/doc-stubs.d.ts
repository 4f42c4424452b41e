// The names the documentation's snippets take from their surroundings, and the types of the two packages
// they use that are not installed here (xterm) or ship none (noVNC), as their own docs declare them.
declare const getToken: () => Promise<string>
declare const token: string
declare const url: string
declare const password: string
declare function show(message: string): void

declare module '@xterm/xterm' {
  export class Terminal {
    loadAddon(addon: { activate(terminal: Terminal): void; dispose(): void }): void
    open(parent: HTMLElement): void
  }
}

declare module '@xterm/addon-attach' {
  import type { Terminal } from '@xterm/xterm'
  export class AttachAddon {
    constructor(socket: WebSocket, options?: { bidirectional?: boolean })
    activate(terminal: Terminal): void
    dispose(): void
  }
}

declare module '@novnc/novnc' {
  export default class RFB extends EventTarget {
    constructor(
      target: HTMLElement,
      urlOrChannel: string | WebSocket,
      options?: { shared?: boolean; credentials?: { password?: string }; wsProtocols?: string[] },
    )
    addEventListener(
      type: 'disconnect',
      listener: (event: CustomEvent<{ clean: boolean }>) => void,
    ): void
    addEventListener(type: string, listener: EventListenerOrEventListenerObject): void
  }
}
