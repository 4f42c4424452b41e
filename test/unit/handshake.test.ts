import { describe, expect, it } from 'vitest'
import { extensionsProblem, subprotocolProblem } from '../../src/gateway/handshake.js'

describe('Sec-WebSocket-Protocol grammar', () => {
  it.each([undefined, 'binary', 'gangway.v1, binary', 'a,b ,  c'])('accepts %j', (header) => {
    expect(subprotocolProblem(header)).toBeUndefined()
  })
  it.each(['', 'a,,b', ' , ', 'a b', 'a;b', 'ä', 'binary, binary'])('refuses %j', (header) => {
    expect(subprotocolProblem(header)).toBeDefined()
  })
})

describe('Sec-WebSocket-Extensions grammar (with permessage-deflate)', () => {
  it.each([
    undefined,
    'permessage-deflate',
    'permessage-deflate; client_max_window_bits',
    'permessage-deflate; server_max_window_bits=10; client_no_context_takeover',
    'permessage-deflate; client_max_window_bits="15", permessage-deflate',
    'x-webkit-deflate-frame, foo; bar=baz',
  ])('accepts %j', (header) => {
    expect(extensionsProblem(header)).toBeUndefined()
  })
  it.each([
    'foo;;',
    ';',
    'permessage-deflate; client_max_window_bits=99',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; unknown_param',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; a="b c"',
  ])('refuses %j', (header) => {
    expect(extensionsProblem(header)).toBeDefined()
  })
})
