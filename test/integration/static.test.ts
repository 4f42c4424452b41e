import { once } from 'node:events'
import { mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createStaticHandler } from '../../src/gateway/static.js'
import { createDisposer } from '../helpers/disposer.js'

const SECRET = 'TOP-SECRET-6f1c2a'

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
  raw: Buffer
}

const disposer = createDisposer()
let base: string
let root: string
let port: number

afterEach(() => disposer.run())

/** Tree: base/secret.txt and base/outside/ sit outside root; root has symlinks pointing at them. */
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'gangway-static-'))
  disposer.add(() => rm(base, { recursive: true, force: true }))
  root = join(base, 'root')
  await mkdir(join(root, 'sub'), { recursive: true })
  await mkdir(join(root, 'empty'))
  await mkdir(join(base, 'outside'))
  await writeFile(join(base, 'secret.txt'), SECRET)
  await writeFile(join(base, 'outside', 'secret.txt'), SECRET)
  await writeFile(join(root, 'index.html'), '<h1>root</h1>')
  await writeFile(join(root, 'sub', 'index.html'), '<h1>sub</h1>')
  await writeFile(join(root, 'notes.txt'), 'hello')
  await writeFile(join(root, '.env'), SECRET)
  await symlink(join(base, 'secret.txt'), join(root, 'link-out'))
  await symlink(join(base, 'outside'), join(root, 'link-out-dir'))
  await symlink(join(root, 'notes.txt'), join(root, 'link-in.txt'))

  const server = createServer(createStaticHandler(root))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
  disposer.add(() => closeServer(server))
})

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  server.close()
  await once(server, 'close')
}

/** Sends bytes exactly as given (no client normalises the path) and reads until the server closes. */
async function raw(request: string): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1')
  disposer.add(() => socket.destroy())
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.write(request)
  await once(socket, 'close')
  const all = Buffer.concat(chunks)
  const split = all.indexOf('\r\n\r\n')
  const head = all.subarray(0, split).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return {
    status: Number(head[0]?.split(' ')[1]),
    headers,
    body: all.subarray(split + 4),
    raw: all,
  }
}

function request(method: string, target: string): Promise<RawResponse> {
  return raw(`${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
}

describe('static file handler: no escape from the root', () => {
  const attempts = [
    '/../secret.txt',
    '/../../../../../../etc/passwd',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/%2e./secret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%2fsecret.txt',
    '/..%5csecret.txt',
    '/..\\secret.txt',
    '/%2e%2e%5c%2e%2e%5csecret.txt',
    '/%252e%252e/secret.txt',
    '/%252e%252e%252fsecret.txt',
    '/%c0%ae%c0%ae/secret.txt',
    '/sub/../../secret.txt',
    '/./../secret.txt',
    '//../secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/..;/secret.txt',
    '/link-out',
    '/link-out-dir/secret.txt',
    '/link-out-dir/',
    '/.env',
    '/%2eenv',
    '/notes.txt%00.html',
    '/%',
    '/%zz',
    'http://127.0.0.1/../secret.txt',
    'http://x/%2e%2e/secret.txt',
    'HTTP://x/..%2f..%2fsecret.txt',
    '../secret.txt',
    '*',
  ]

  it.each(attempts)('answers %s with 400 or 404 and never the secret', async (target) => {
    const res = await request('GET', target)
    expect([400, 404]).toContain(res.status)
    expect(res.raw.includes(SECRET)).toBe(false)
    expect(res.raw.includes('root:')).toBe(false)
  })

  it('refuses a raw NUL byte in the target', async () => {
    const res = await request('GET', '/notes.txt\0/../../secret.txt')
    expect(res.status).toBe(400)
    expect(res.raw.includes(SECRET)).toBe(false)
  })

  it('refuses malformed percent-encoding with 400 and a short plain-text body', async () => {
    const res = await request('GET', '/%E0%A4%A')
    expect(res.status).toBe(400)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.body.toString()).toBe('400 Bad Request\n')
  })

  it('still follows a symlink that stays inside the root', async () => {
    const res = await request('GET', '/link-in.txt')
    expect(res.status).toBe(200)
    expect(res.body.toString()).toBe('hello')
  })
})

describe('static file handler: responses', () => {
  const files: Array<[string, string]> = [
    ['page.html', 'text/html; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['mod.mjs', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
    ['data.json', 'application/json'],
    ['pic.svg', 'image/svg+xml'],
    ['img.png', 'image/png'],
    ['photo.JPG', 'image/jpeg'],
    ['anim.gif', 'image/gif'],
    ['favicon.ico', 'image/x-icon'],
    ['mod.wasm', 'application/wasm'],
    ['readme.txt', 'text/plain; charset=utf-8'],
    ['app.js.map', 'application/json'],
    ['font.woff', 'font/woff'],
    ['font.woff2', 'font/woff2'],
    ['blob.bin', 'application/octet-stream'],
    ['no-extension', 'application/octet-stream'],
  ]

  it.each(files)('serves %s as %s with its exact bytes', async (name, type) => {
    const content = Buffer.from(`content of ${name} \u00e9\0\xff`, 'latin1')
    await writeFile(join(root, name), content)
    const res = await request('GET', `/${name}?v=1&x=/../secret.txt`)
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe(type)
    expect(res.headers['content-length']).toBe(String(content.length))
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['cache-control']).toBe('no-cache')
    expect(res.body.equals(content)).toBe(true)
  })

  it('answers HEAD with the headers of GET and no body', async () => {
    const res = await request('HEAD', '/notes.txt')
    expect(res.status).toBe(200)
    expect(res.headers['content-length']).toBe('5')
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.body.length).toBe(0)
  })

  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('answers %s with 405', async (method) => {
    const res = await request(method, '/notes.txt')
    expect(res.status).toBe(405)
    expect(res.headers['allow']).toBe('GET, HEAD')
  })

  it('serves index.html for the root and for a directory with a trailing slash', async () => {
    expect((await request('GET', '/')).body.toString()).toBe('<h1>root</h1>')
    expect((await request('GET', 'http://127.0.0.1:1/')).body.toString()).toBe('<h1>root</h1>')
    const sub = await request('GET', '/sub/?q=1')
    expect(sub.status).toBe(200)
    expect(sub.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(sub.body.toString()).toBe('<h1>sub</h1>')
  })

  it('redirects a directory without trailing slash to the slash form, dropping the query', async () => {
    const res = await request('GET', '/sub?next=//evil.example')
    expect(res.status).toBe(301)
    expect(res.headers['location']).toBe('/sub/')
  })

  it('builds the redirect Location from the checked path only', async () => {
    await mkdir(join(root, 'a b'))
    expect((await request('GET', '//a%20b')).headers['location']).toBe('/a%20b/')
    expect((await request('GET', '/./sub')).headers['location']).toBe('/sub/')
  })

  it('answers 404 for missing files, directories without index.html, and files with a slash', async () => {
    for (const target of ['/missing.txt', '/empty/', '/notes.txt/', '/sub/missing/x']) {
      const res = await request('GET', target)
      expect(res.status, target).toBe(404)
      expect(res.body.toString()).toBe('404 Not Found\n')
    }
  })

  it('closes the file descriptor when the client hangs up mid-body', async () => {
    await writeFile(join(root, 'big.bin'), Buffer.alloc(32 * 1024 * 1024, 7))
    const socket = connect(port, '127.0.0.1')
    disposer.add(() => socket.destroy())
    socket.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(socket, 'data')
    expect(await openFds()).toEqual([join(root, 'big.bin')])
    socket.destroy()
    // fs closes the descriptor on the thread pool and tells nobody outside the stream, so watch
    // /proc for a bounded number of event-loop turns (no timers).
    let open = await openFds()
    for (let turn = 0; turn < 5000 && open.length > 0; turn++) {
      await new Promise((resolve) => setImmediate(resolve))
      open = await openFds()
    }
    expect(open).toEqual([])
  })
})

/** What this process has open, as link targets (files under root show their path). */
async function openFds(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(
    fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
  )
  return targets.filter((target) => target.startsWith(root))
}
