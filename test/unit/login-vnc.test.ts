import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { desEcb, vncKey, vncResponse } from '../../src/targets/login/des.js'
import type { ClientOpening, OpeningStep } from '../../src/targets/login/login.js'
import { clientOpening } from '../../src/targets/login/vnc.js'

describe('VNC Authentication', () => {
  it('computes DES (FIPS 46 test vector) with 3DES under three equal keys', () => {
    const key = Buffer.from('133457799BBCDFF1', 'hex')
    expect(desEcb(key, Buffer.from('0123456789ABCDEF', 'hex')).toString('hex')).toBe(
      '85e813540f0ab405',
    )
  })

  it('derives the key as VNC does: 8 bytes, zero-padded, each bit-reversed', () => {
    expect(vncKey(Buffer.from('pw')).toString('hex')).toBe('0eee000000000000')
    expect(vncKey(Buffer.from('123456789')).equals(vncKey(Buffer.from('12345678')))).toBe(true)
  })

  it('answers a challenge as TigerVNC checks it (DES of both 8-byte halves)', () => {
    const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
    const response = vncResponse(Buffer.from('secret'), challenge)
    const key = vncKey(Buffer.from('secret'))
    expect(response).toEqual(
      Buffer.concat([desEcb(key, challenge.subarray(0, 8)), desEcb(key, challenge.subarray(8))]),
    )
  })
})

const SERVER_38 = Buffer.from('RFB 003.008\n')

/**
 * Feeds the pieces to an opening as the splice does; returns the replies, the final step and what reaches
 * the target (the step's rest, then the pieces after it).
 */
function run(
  opening: ClientOpening,
  pieces: Buffer[],
): { replies: Buffer; last: OpeningStep; passed: Buffer } {
  const replies: Buffer[] = []
  let last: OpeningStep = { kind: 'more' }
  let i = 0
  for (; i < pieces.length; i++) {
    last = opening.onClientBytes(pieces[i]!)
    if (last.reply !== undefined) replies.push(last.reply)
    if (last.kind !== 'more') break
  }
  const passed = last.kind === 'done' ? [last.rest, ...pieces.slice(i + 1)] : []
  return { replies: Buffer.concat(replies), last, passed: Buffer.concat(passed) }
}

describe('the client side of a VNC login', () => {
  it('greets with the server’s own version line', () => {
    expect(clientOpening(SERVER_38).greeting).toEqual(SERVER_38)
  })

  it.each([
    ['RFB 003.008\n', '01010000' + '0000', 1],
    ['RFB 003.007\n', '0101', 1],
    ['RFB 003.003\n', '00000001', 0],
    ['RFB 003.005\n', '00000001', 0], // unknown 3.x minors speak 3.3 (RFC 6143 7.1.1)
  ])('offers a %j client security None and nothing else', (version, replyHex, choice) => {
    const client = Buffer.concat([
      Buffer.from(version),
      Buffer.alloc(choice, 1),
      Buffer.from([1, 9, 9]),
    ])
    // Any split of the client's bytes gives the same replies, and the bytes after the opening go on.
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: client.length - 1 }), { maxLength: 6 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((a, b) => a - b)
          const pieces = [0, ...points].map((at, i) =>
            client.subarray(at, points[i] ?? client.length),
          )
          const { replies, last, passed } = run(clientOpening(SERVER_38), pieces)
          expect(replies.toString('hex')).toBe(replyHex)
          expect(last.kind).toBe('done')
          expect(passed.toString('hex')).toBe('010909')
        },
      ),
    )
  })

  it('refuses a client that is not RFB, or that picks a security type it was not offered', () => {
    expect(run(clientOpening(SERVER_38), [Buffer.from('GET / HTTP/1.1\r\n')]).last.kind).toBe(
      'refuse',
    )
    const picked2 = run(clientOpening(SERVER_38), [Buffer.from('RFB 003.008\n'), Buffer.from([2])])
    expect(picked2.last.kind).toBe('refuse')
  })
})
