// OPENID_SESSION_SECRET's one owner: every key the gateway uses is derived here, with HKDF,
// one per purpose, so the cookie-signing key and the sealing key are never the same bytes.
// Rotation: OPENID_SESSION_SECRET signs and seals, it and every OPENID_SESSION_SECRET_PREVIOUS
// verify and open. The secret is never a key itself, so its length need not be a key's
// (config/session.ts accepts 16 characters and up).
import { hkdfSync } from 'node:crypto'
import { Sealer } from './seal.js'

function deriveKey (secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'entra-gateway', purpose, 32))
}

export interface SessionKeys {
  /** Secrets for @fastify/cookie's signer, newest first. */
  cookieSecrets: string[]
  /** Seals values at rest (tokens, markers, login transactions, the identity key). */
  sealer: Sealer
}

export function sessionKeys (secrets: readonly string[]): SessionKeys {
  if (secrets.length === 0) throw new Error('at least one secret is required')
  return {
    cookieSecrets: secrets.map(s => deriveKey(s, 'session-cookie').toString('hex')),
    sealer: new Sealer(secrets.map(s => deriveKey(s, 'token-sealing')))
  }
}
