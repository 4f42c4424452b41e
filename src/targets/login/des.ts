/**
 * @module targets/login/des
 * VNC Authentication's response (RFC 6143 7.2.2): the 16-byte challenge encrypted with DES in ECB mode
 * under a key made of the password's first 8 bytes (zero-padded), each byte's bits reversed (the quirk of
 * the original VNC's DES code). OpenSSL 3 keeps single DES in its legacy provider, which Node 20 does not
 * load, but three-key 3DES with three equal keys is single DES (E_K ∘ D_K ∘ E_K = E_K), and 3DES is in
 * the default provider.
 */
import { createCipheriv } from 'node:crypto'

/** The key VNC derives from a password: 8 bytes, truncated or zero-padded, each bit-reversed. */
export function vncKey(password: Buffer): Buffer {
  const key = Buffer.alloc(8)
  for (let i = 0; i < 8 && i < password.length; i++) key[i] = reverseBits(password[i] as number)
  return key
}

/** DES-ECB of `data` (a multiple of 8 bytes) under an 8-byte key. */
export function desEcb(key: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv('des-ede3-ecb', Buffer.concat([key, key, key]), null)
  cipher.setAutoPadding(false)
  return Buffer.concat([cipher.update(data), cipher.final()])
}

/** The answer to a VNC Authentication challenge. */
export function vncResponse(password: Buffer, challenge: Buffer): Buffer {
  const key = vncKey(password)
  try {
    return desEcb(key, challenge)
  } finally {
    key.fill(0)
  }
}

function reverseBits(byte: number): number {
  let out = 0
  for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out |= 1 << (7 - bit)
  return out
}
