import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { createLogger, fingerprint, resolveNodeId } from '../../src/log.js'

function capture(isTTY: boolean) {
  const lines: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  }) as Writable & { isTTY?: boolean }
  stream.isTTY = isTTY
  return { stream, lines }
}

describe('logger', () => {
  it('writes one JSON object per line with level, ISO time, message and fields', () => {
    const { stream, lines } = capture(false)
    const log = createLogger({ level: 'info', format: 'auto', stream })
    log.info('tunnel closed', { conn: 3, up: 10, down: 20, code: 1000 })
    expect(lines).toHaveLength(1)
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>
    expect(rec).toMatchObject({
      level: 'info',
      msg: 'tunnel closed',
      conn: 3,
      up: 10,
      down: 20,
      code: 1000,
    })
    expect(rec.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  it('writes readable text when the stream is a terminal (format auto)', () => {
    const { stream, lines } = capture(true)
    createLogger({ level: 'info', format: 'auto', stream }).warn('tunnel refused', {
      conn: 4,
      reason: 'a b',
    })
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}tunnel refused conn=4 reason="a b"$/)
  })

  it('honours --log-format over the terminal check', () => {
    const tty = capture(true)
    createLogger({ level: 'info', format: 'json', stream: tty.stream }).info('x')
    expect(JSON.parse(tty.lines[0]!)).toMatchObject({ msg: 'x' })
    const pipe = capture(false)
    createLogger({ level: 'info', format: 'pretty', stream: pipe.stream }).info('y')
    expect(pipe.lines[0]).toMatch(/ INFO {2}y$/)
  })

  it('drops lines below the level, and everything when silent', () => {
    const { stream, lines } = capture(false)
    const log = createLogger({ level: 'warn', format: 'json', stream })
    log.debug('d')
    log.info('i')
    log.warn('w')
    log.error('e')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w', 'e'])
    const silent = capture(false)
    createLogger({ level: 'silent', format: 'json', stream: silent.stream }).error('nothing')
    expect(silent.lines).toEqual([])
  })
})

describe('fingerprint', () => {
  it('is the first 8 hex digits of the SHA-256, and does not contain the secret', () => {
    const secret = 'super-secret-token'
    const fp = fingerprint(secret)
    expect(fp).toBe(createHash('sha256').update(secret).digest('hex').slice(0, 8))
    expect(fp).toMatch(/^[0-9a-f]{8}$/)
    expect(fingerprint('another')).not.toBe(fp)
  })
})

describe('resolveNodeId', () => {
  const SAFE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$/

  it('turns any host name into a safe, non-empty node id', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (host) => {
        expect(resolveNodeId(undefined, host)).toMatch(SAFE)
      }),
    )
    expect(resolveNodeId(undefined, 'gw-1.example')).toBe('gw-1.example')
  })

  it('takes a configured id as it is, and refuses one that is not safe to log', () => {
    expect(resolveNodeId('edge:1', 'host')).toBe('edge:1')
    for (const bad of ['', 'a b', '-x', 'x'.repeat(64), 'a\nb', 'é']) {
      expect(() => resolveNodeId(bad, 'host')).toThrow(/--node-id/)
    }
  })
})
