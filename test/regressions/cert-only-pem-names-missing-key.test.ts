/**
 * `--cert` with a certificate-only PEM and no `--key` failed with OpenSSL's
 * `error:1E08010C:DECODER routines::unsupported`. It now says the key is missing and how to give it; an
 * encrypted key and a key of another certificate are named as such too.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, expect, it } from 'vitest'
import { loadTlsOptions } from '../../src/gateway/tls.js'
import { runGangway } from '../cli/gangway-process.js'
import { makeCert } from '../helpers/certs.js'
import { createDisposer } from '../helpers/disposer.js'
import { tempDir } from '../helpers/tmp.js'

const run = promisify(execFile)
const d = createDisposer()
afterEach(() => d.run())

const settings = (certFile: string, keyFile = certFile) =>
  ({ certFile, keyFile, minVersion: 'TLSv1.2', ciphers: undefined }) as const

it('--cert with a certificate-only PEM and no --key: one line saying the key is missing (exit 2)', async () => {
  const dir = await tempDir(d, 'gangway-certonly-')
  const { cert } = await makeCert(dir, 'localhost')
  const result = await runGangway(d, ['--cert', cert, '127.0.0.1:0', '127.0.0.1:9'])
  expect(result.code).toBe(2)
  expect(result.stderr).toHaveLength(1)
  expect(result.stderr[0]).toMatch(
    /TLS key missing: .*holds a certificate but no private key.*--key/,
  )
  expect(result.stderr[0]).not.toMatch(/DECODER/)
})

it('names an encrypted key and a key that belongs to another certificate', async () => {
  const dir = await tempDir(d, 'gangway-certkeys-')
  const one = await makeCert(dir, 'localhost', 'one')
  const two = await makeCert(dir, 'localhost', 'two')
  await expect(loadTlsOptions(settings(one.cert, two.key))).rejects.toThrow(
    /the key does not match the certificate/,
  )
  const encrypted = join(dir, 'encrypted.key')
  await run('openssl', [
    'pkey',
    '-in',
    one.key,
    '-aes256',
    '-passout',
    'pass:secret-pass',
    '-out',
    encrypted,
  ])
  await expect(loadTlsOptions(settings(one.cert, encrypted))).rejects.toThrow(
    /is encrypted .*decrypt it/,
  )
  await expect(loadTlsOptions(settings(one.key, one.key))).rejects.toThrow(
    /holds no PEM certificate/,
  )
  await expect(loadTlsOptions(settings(one.cert, one.key))).resolves.toBeDefined()
})
