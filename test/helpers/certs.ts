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
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    key,
    '-out',
    cert,
  ])
  return { cert, key, pem: await readFile(cert, 'utf8') }
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
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name} test CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
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
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
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
