import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { clientOpening, startupMessage } from '../../src/targets/login/postgres.js'
import type { OpeningStep } from '../../src/targets/login/login.js'

const KEPT = Buffer.from('R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I', 'latin1')
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
const CANCEL = Buffer.concat([Buffer.from([0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]), Buffer.alloc(8)])

function feed(pieces: Buffer[]): { replies: string; last: OpeningStep } {
  const opening = clientOpening('app', 'appdb', KEPT)
  const replies: Buffer[] = []
  let last: OpeningStep = { kind: 'more' }
  for (const piece of pieces) {
    last = opening.onClientBytes(piece)
    if (last.reply !== undefined) replies.push(last.reply)
    if (last.kind !== 'more') break
  }
  return { replies: Buffer.concat(replies).toString('latin1'), last }
}

describe('the client side of a postgres login', () => {
  it('answers N to SSLRequest, then the kept messages to the startup, in any split', () => {
    const bytes = Buffer.concat([
      SSL_REQUEST,
      startupMessage({ user: 'app', database: 'appdb', application_name: 'x' }),
      Buffer.from('Q\0\0\0\x0dselect 1\0'),
    ])
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 8 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((a, b) => a - b)
          const pieces = [0, ...points].map((at, i) =>
            bytes.subarray(at, points[i] ?? bytes.length),
          )
          const { replies, last } = feed(pieces)
          expect(last.kind).toBe('done')
          expect(replies).toBe('N' + KEPT.toString('latin1'))
        },
      ),
    )
  })

  it('accepts a startup without a database (it defaults to the user) ', () => {
    const app = clientOpening('app', 'app', KEPT)
    expect(app.onClientBytes(startupMessage({ user: 'app' })).kind).toBe('done')
  })

  it('refuses another user or database with a FATAL ErrorResponse, and a CancelRequest', () => {
    const wrongUser = feed([startupMessage({ user: 'root', database: 'appdb' })])
    expect(wrongUser.last.kind).toBe('refuse')
    expect(wrongUser.replies).toMatch(/^E.*SFATAL\0VFATAL\0C28000\0M.*"app", not "root"/s)
    const wrongDb = feed([startupMessage({ user: 'app', database: 'other' })])
    expect(wrongDb.replies).toMatch(/C3D000/)
    expect(feed([CANCEL]).last.kind).toBe('refuse')
  })

  it('refuses a length it would have to buffer beyond PostgreSQL’s own startup limit', () => {
    const huge = Buffer.from([0, 1, 0, 0, 0, 3, 0, 0])
    expect(feed([huge]).last.kind).toBe('refuse')
    expect(feed([Buffer.from([0, 0, 0, 4, 0, 3, 0, 0])]).last.kind).toBe('refuse')
  })

  it('tells a client asking for protocol 3.2 that this connection speaks 3.0', () => {
    const startup = startupMessage({ user: 'app', database: 'appdb' })
    startup.writeInt32BE(196_610, 4)
    const { replies } = feed([startup])
    expect(replies.startsWith('v')).toBe(true)
    expect(replies.endsWith(KEPT.toString('latin1'))).toBe(true)
  })
})
