import { describe, expect, it } from 'vitest'
import { parseTokenFile, type TokenTable } from '../../src/targets/token-file.js'
import { tokenKey } from '../../src/config/routes.js'

function lookup(table: TokenTable, token: string) {
  return table.get(tokenKey(token))
}

describe('websockify token file grammar (reference b.2)', () => {
  it('reads "token: host:port" lines, trimming them and skipping blanks and comments', () => {
    const table = parseTokenFile(
      '  # a comment\n\n   \nvnc1: 10.0.0.5:5900\n\t tok2: db:5432 \r\n',
      '/t/tokens',
    )
    expect(lookup(table, 'vnc1')).toEqual({ kind: 'tcp', host: '10.0.0.5', port: 5900 })
    expect(lookup(table, 'tok2')).toEqual({ kind: 'tcp', host: 'db', port: 5432 })
    expect(table.size).toBe(2)
  })

  it('accepts a tab after the colon, and tokens with inner colons and spaces', () => {
    const table = parseTokenFile('a:b:c:\thost:1\nmy token: host:2\n', '/t/f')
    expect(lookup(table, 'a:b:c')).toEqual({ kind: 'tcp', host: 'host', port: 1 })
    expect(lookup(table, 'my token')).toEqual({ kind: 'tcp', host: 'host', port: 2 })
  })

  it('matches tokens exactly and case-sensitively', () => {
    const table = parseTokenFile('Tok: h:1\n', '/t/f')
    expect(lookup(table, 'tok')).toBeUndefined()
    expect(lookup(table, 'Tok ')).toBeUndefined()
  })

  it('has no inline comments: "#" after the start is part of the line', () => {
    const table = parseTokenFile('t#1: h:1\n', '/t/f')
    expect(lookup(table, 't#1')).toBeDefined()
  })

  it('splits the target at its last colon (bare IPv6 as websockify writes it) and also takes [v6]:port', () => {
    const table = parseTokenFile('v6: ::1:5900\nv6b: [fe80::1%eth0]:5901\n', '/t/f')
    expect(lookup(table, 'v6')).toEqual({ kind: 'tcp', host: '::1', port: 5900 })
    expect(lookup(table, 'v6b')).toEqual({ kind: 'tcp', host: 'fe80::1%eth0', port: 5901 })
  })

  it('reads unix_socket targets, relative paths against the file directory', () => {
    const table = parseTokenFile(
      'u: unix_socket:/run/vnc.sock\nr: unix_socket:rel.sock\n',
      '/etc/gw/tokens',
    )
    expect(lookup(table, 'u')).toEqual({ kind: 'unix', path: '/run/vnc.sock' })
    expect(lookup(table, 'r')).toEqual({ kind: 'unix', path: '/etc/gw/rel.sock' })
  })

  it('lets a later line win over an earlier one', () => {
    const table = parseTokenFile('t: a:1\nt: b:2\n', '/t/f')
    expect(lookup(table, 't')).toEqual({ kind: 'tcp', host: 'b', port: 2 })
  })

  it.each([
    ['tok:host:5900', /tokens:2: expected "token: host:port".*found 0/],
    ['tok: host: 5900', /tokens:2: .*found 2/],
    ['tok: hostonly', /tokens:2: expected host:port/],
    ['tok: host:99999', /tokens:2: port must be 1-65535/],
    ['tok: host:vnc', /tokens:2: port must be 1-65535/],
    ['tok: [::1:5900', /tokens:2: expected host:port/],
    ['tok: unix_socket:', /tokens:2: unix_socket needs a path/],
  ])('rejects %j with the real file name and line number', (line, message) => {
    expect(() => parseTokenFile(`ok: h:1\n${line}\n`, '/srv/tokens')).toThrow(message)
    expect(() => parseTokenFile(`ok: h:1\n${line}\n`, '/srv/tokens')).toThrow(
      /^token file \/srv\/tokens:2/,
    )
  })
})
