/**
 * Self-signed certificates for TLS tests, made with the system's openssl (EC P-256, valid for 127.0.0.1
 * and localhost), written into a directory the test owns; and a small CA with leaves it signs (server
 * and client certificates) for TLS towards targets.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface CertFiles {
  cert: string
  key: string
  /** PEM of the certificate, to trust it as a CA in a client. */
  pem: string
}

export async function makeCert(
  dir: string,
  commonName: string,
  name = commonName,
): Promise<CertFiles> {
  return selfSigned(dir, name, `/CN=${commonName}`, ['subjectAltName=IP:127.0.0.1,DNS:localhost'])
}

/** Replaces `target`'s files by renaming `source`'s over them, as certificate renewal tools do. */
export async function installCert(
  source: CertFiles,
  target: { cert: string; key: string },
): Promise<void> {
  await rename(source.key, target.key)
  await rename(source.cert, target.cert)
}

/** A certificate authority (self-signed, CA:TRUE) that signs leaves with `makeLeaf`. */
export async function makeCa(dir: string, name = 'ca'): Promise<CertFiles> {
  return selfSigned(dir, name, `/CN=${name} test CA`, [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
}

/** openssl arguments for a new EC P-256 key, unencrypted. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A self-signed certificate valid for a day with the given extensions, as `<name>.crt` / `<name>.key`. */
async function selfSigned(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
): Promise<CertFiles> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  await run('openssl', [
    'req',
    '-x509',
    ...NEW_EC_KEY,
    '-days',
    '1',
    '-subj',
    subject,
    ...extensions.flatMap((extension) => ['-addext', extension]),
    '-keyout',
    key,
    '-out',
    cert,
  ])
  return { cert, key, pem: await readFile(cert, 'utf8') }
}

export interface LeafOptions {
  /** subjectAltName entries (default: 127.0.0.1, ::1 and localhost). */
  san?: string
  /** A client certificate (extendedKeyUsage clientAuth) instead of a server one. */
  client?: boolean
}

/** A leaf certificate for `commonName` signed by `ca`, with its key, as `<name>.crt` / `<name>.key`. */
export async function makeLeaf(
  dir: string,
  ca: CertFiles,
  commonName: string,
  name = commonName,
  options: LeafOptions = {},
): Promise<CertFiles> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  await run('openssl', [
    'req',
    '-new',
    ...NEW_EC_KEY,
    '-subj',
    `/CN=${commonName}`,
    '-keyout',
    key,
    '-out',
    csr,
  ])
  const usage = options.client === true ? 'clientAuth' : 'serverAuth'
  await writeFile(
    ext,
    `subjectAltName=${options.san ?? 'IP:127.0.0.1,IP:::1,DNS:localhost'}\nextendedKeyUsage=${usage}\n`,
  )
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '1',
    '-extfile',
    ext,
    '-out',
    cert,
  ])
  return { cert, key, pem: await readFile(cert, 'utf8') }
}
