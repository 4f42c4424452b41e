/**
 * Self-signed certificates for TLS tests, made with the system's openssl (EC P-256, valid for 127.0.0.1
 * and localhost), written into a directory the test owns.
 */
import { execFile } from 'node:child_process'
import { readFile, rename } from 'node:fs/promises'
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
