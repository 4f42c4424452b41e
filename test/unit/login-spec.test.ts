import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { parseLoginSpec } from '../../src/config/login-spec.js'
import { parseRoutes } from '../../src/config/routes.js'
import { ConfigError } from '../../src/errors.js'
import { createPasswordStore, readPasswordFile } from '../../src/targets/login/passwords.js'

const dirs: string[] = []
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})
async function dir(): Promise<string> {
  const made = await mkdtemp(join(tmpdir(), 'gangway-login-unit-'))
  dirs.push(made)
  return made
}

describe('a route login', () => {
  it('resolves the password file against the config directory', () => {
    expect(
      parseLoginSpec({ protocol: 'redis', passwordFile: 'r.pass', user: 'app' }, '/etc/gw'),
    ).toEqual({
      protocol: 'redis',
      passwordFile: '/etc/gw/r.pass',
      user: 'app',
    })
  })

  it.each([
    [{ protocol: 'telnet', passwordFile: 'p' }, /protocol: expected one of/],
    [{ protocol: 'redis' }, /passwordFile: expected a file path/],
    [{ protocol: 'redis', passwordFile: 'p', password: 'x' }, /a password is never written/],
    [{ protocol: 'redis', passwordFile: 'p', database: 'x' }, /takes no database/],
    [{ protocol: 'redis', passwordFile: 'p', user: 'a\0b' }, /user: expected a name/],
    [{ protocol: 'redis', passwordFile: 'p', extra: 1 }, /unknown key "extra"/],
    ['redis', /expected a mapping/],
  ])('refuses %j', (value, message) => {
    expect(() => parseLoginSpec(value, '/')).toThrow(message)
  })

  it('never quotes a password written in the config back in the error', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 12 }), (secret) => {
        expect(() =>
          parseLoginSpec({ protocol: 'redis', passwordFile: 'p', password: secret }, '/'),
        ).toThrow(/^a password is never written in the config/)
      }),
    )
  })

  it('is part of a route, in its options (so a JWT naming the route gets it)', () => {
    const routes = parseRoutes(
      { cache: { target: '127.0.0.1:6379', login: { protocol: 'redis', passwordFile: '/p' } } },
      'routes',
    )
    expect(routes.get('cache')?.options.login).toEqual({ protocol: 'redis', passwordFile: '/p' })
    expect(() =>
      parseRoutes({ cache: { target: '127.0.0.1:6379', login: { protocol: 'x' } } }, 'routes'),
    ).toThrow(/^routes\.cache\.login: protocol/)
  })
})

describe('password files', () => {
  it('drop one trailing newline (LF or CRLF) and nothing else', async () => {
    const at = await dir()
    for (const [content, expected] of [
      ['pw\n', 'pw'],
      ['pw\r\n', 'pw'],
      ['pw', 'pw'],
      [' pw \n\n', ' pw \n'],
    ]) {
      await writeFile(join(at, 'f'), content!)
      expect(readPasswordFile(join(at, 'f')).toString()).toBe(expected)
    }
  })

  it('refuse an empty file, a directory and an oversized file, naming the route and file', async () => {
    const at = await dir()
    await writeFile(join(at, 'empty'), '\n')
    await writeFile(join(at, 'big'), Buffer.alloc(5000, 0x61))
    for (const [file, why] of [
      [join(at, 'empty'), 'the file is empty'],
      [at, 'not a regular file'],
      [join(at, 'big'), 'larger than 4096 bytes'],
      [join(at, 'nope'), 'cannot read it (ENOENT)'],
    ]) {
      const routes = parseRoutes(
        { r: { target: '127.0.0.1:1', login: { protocol: 'redis', passwordFile: file } } },
        'routes',
      )
      let error: unknown
      try {
        createPasswordStore(routes, { watch: false })
      } catch (err) {
        error = err
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message).toContain(`route "r" login.passwordFile ${file}: ${why}`)
    }
  })

  it('follow a symlink (Kubernetes Secret volumes) and keep the previous password when a reload fails', async () => {
    const at = await dir()
    await writeFile(join(at, 'real'), 'first\n')
    await symlink(join(at, 'real'), join(at, 'link'))
    const routes = parseRoutes(
      {
        r: { target: '127.0.0.1:1', login: { protocol: 'redis', passwordFile: join(at, 'link') } },
      },
      'routes',
    )
    const store = createPasswordStore(routes, { watch: false })
    expect(store.password(join(at, 'link'))?.toString()).toBe('first')
    await rm(join(at, 'real'))
    store.reload()
    expect(store.password(join(at, 'link'))?.toString()).toBe('first')
    await writeFile(join(at, 'real'), 'second\n')
    store.reload()
    expect(store.password(join(at, 'link'))?.toString()).toBe('second')
    store.close()
  })
})
