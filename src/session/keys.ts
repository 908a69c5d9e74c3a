// One secret from the operator, distinct keys per purpose (cookie signing, token sealing, ...).
import { hkdfSync } from 'node:crypto'

export function deriveKey (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'entra-gateway', purpose, 32))
}
