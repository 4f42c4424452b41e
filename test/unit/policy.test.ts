import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import { createTargetPolicy, parseRule } from '../../src/targets/policy.js'
import type { Target } from '../../src/config/options.js'

const DNS: Record<string, LookupAddress[]> = {
  'db.internal': [{ address: '10.1.2.3', family: 4 }],
  'app.example.com': [{ address: '93.184.215.14', family: 4 }],
  'meta.example.com': [{ address: '169.254.169.254', family: 4 }],
  'mixed.example.com': [
    { address: '93.184.215.14', family: 4 },
    { address: '::1', family: 6 },
  ],
  'mapped.example.com': [{ address: '::ffff:127.0.0.1', family: 6 }],
  'pub6.example.com': [{ address: '2606:2800:220:1::1', family: 6 }],
}

function policy(allow: string[], deny: string[] = []) {
  return createTargetPolicy({
    allow,
    deny,
    lookup: (host) => {
      const found = DNS[host]
      if (found === undefined)
        return Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' }))
      return Promise.resolve(found)
    },
  })
}

const tcp = (host: string, port: number): Target => ({ kind: 'tcp', host, port })
const verdict = (p: ReturnType<typeof policy>, t: Target) =>
  p.check(t, { timeoutMs: 1000 }).then(
    (c) => ({ ok: true, addresses: c.addresses?.map((a) => a.address), message: undefined }),
    (e: { code: string; closeCode: number; message: string }) => ({
      ok: false,
      code: e.code,
      closeCode: e.closeCode,
      message: e.message,
    }),
  )

describe('target policy', () => {
  it('allows by CIDR and port range, and nothing outside them', async () => {
    const p = policy(['10.0.0.0/8:5900-5999'])
    expect(await verdict(p, tcp('10.9.9.9', 5901))).toEqual({ ok: true, addresses: ['10.9.9.9'] })
    expect(await verdict(p, tcp('10.9.9.9', 22))).toMatchObject({
      ok: false,
      code: 'ERR_TARGET_DENIED',
      closeCode: 4403,
    })
    expect(await verdict(p, tcp('11.0.0.1', 5901))).toMatchObject({ ok: false, closeCode: 4403 })
  })

  it('allows an exact hostname even when it resolves to an internal address', async () => {
    const p = policy(['db.internal:5432'])
    expect(await verdict(p, tcp('db.internal', 5432))).toEqual({
      ok: true,
      addresses: ['10.1.2.3'],
    })
    expect(await verdict(p, tcp('DB.Internal.', 5432))).toMatchObject({ ok: true })
    expect(await verdict(p, tcp('db.internal', 5433))).toMatchObject({ ok: false })
  })

  it('denies internal addresses behind a wildcard rule: metadata, loopback, IPv4-mapped', async () => {
    const p = policy(['*.example.com', '*'])
    expect(await verdict(p, tcp('app.example.com', 443))).toMatchObject({ ok: true })
    expect(await verdict(p, tcp('pub6.example.com', 443))).toMatchObject({ ok: true })
    for (const host of [
      'meta.example.com',
      'mixed.example.com',
      'mapped.example.com',
      '127.0.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '::',
      '::1',
      'fe80::1',
      '192.168.1.1',
      'fd00::1',
    ]) {
      const v = await verdict(p, tcp(host, 443))
      expect(v, host).toMatchObject({ ok: false, closeCode: 4403 })
      expect(v.message, host).toMatch(/internal/)
    }
  })

  it('checks every resolved address: one internal answer is enough to refuse', async () => {
    const p = policy(['mixed.example.com:443', '93.184.215.14'])
    // an exact name rule names it, so its loopback answer passes; a wildcard would not
    expect(await verdict(p, tcp('mixed.example.com', 443))).toMatchObject({
      ok: true,
      addresses: ['93.184.215.14', '::1'],
    })
    expect(
      await verdict(policy(['*.example.com:443']), tcp('mixed.example.com', 443)),
    ).toMatchObject({ ok: false })
  })

  it('lets deny rules win over allow rules, by name and by address', async () => {
    const p = policy(['*'], ['*.example.com', '93.184.0.0/16'])
    expect((await verdict(p, tcp('app.example.com', 443))).message).toMatch(/deny/)
    expect((await verdict(p, tcp('93.184.1.1', 443))).message).toMatch(/deny/)
    expect(await verdict(p, tcp('8.8.8.8', 53))).toMatchObject({ ok: true })
  })

  it('answers 4503 when a name does not resolve', async () => {
    expect(await verdict(policy(['*']), tcp('nx.example.com', 1))).toMatchObject({
      ok: false,
      code: 'ERR_TARGET_UNREACHABLE',
      closeCode: 4503,
    })
  })

  it('allows unix sockets only under allowed directories, whatever the path says', async () => {
    const p = policy(['unix:/run/vnc'])
    // Allowed, but no such socket here: nothing to dial (4503), not a refusal by the policy.
    expect(await verdict(p, { kind: 'unix', path: '/run/vnc/a.sock' })).toMatchObject({
      ok: false,
      code: 'ERR_TARGET_UNREACHABLE',
    })
    expect(await verdict(p, { kind: 'unix', path: '/run/vnc/../docker.sock' })).toMatchObject({
      ok: false,
      code: 'ERR_TARGET_DENIED',
    })
    expect(await verdict(p, { kind: 'unix', path: '/run/vncx/a.sock' })).toMatchObject({
      ok: false,
      code: 'ERR_TARGET_DENIED',
    })
  })

  it.each([
    '::1:22',
    'host:0',
    'host:9-1',
    '10.0.0.0/33',
    'unix:relative',
    'bad_host!',
    '[::1/200]',
  ])('refuses the rule %j', (rule) => {
    expect(() => parseRule(rule, '--allow')).toThrow(/^--allow: /)
  })
})
