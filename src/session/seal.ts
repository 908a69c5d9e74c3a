// Tokens at rest: sealed with AES-256-GCM under keys derived from OPENID_SESSION_SECRET, so a
// dump of the session store shows no token. With a comma-separated secret list the first
// seals and every one opens, so rotating the secret signs nobody out.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { deriveKey } from './keys.js'

interface SealKey { id: string, key: Buffer }

export class Sealer {
  readonly #keys: SealKey[]
  readonly #byId: Map<string, SealKey>

  constructor (secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('at least one secret is required')
    this.#keys = secrets.map(secret => {
      const key = deriveKey(secret, 'token-sealing')
      // A short, non-secret key id lets open() pick the right key without trying them all.
      return { id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key }
    })
    this.#byId = new Map(this.#keys.map(k => [k.id, k]))
  }

  seal (plaintext: string): string {
    const k = this.#keys[0] as SealKey
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', k.key, iv)
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `v1.${k.id}.${iv.toString('base64url')}.${body.toString('base64url')}`
  }

  /** The plaintext, or undefined when the value was sealed under an unknown key or tampered with. */
  open (sealed: string): string | undefined {
    const [version, id, ivText, bodyText] = sealed.split('.')
    if (version !== 'v1' || id === undefined || ivText === undefined || bodyText === undefined) return undefined
    const k = this.#byId.get(id)
    if (k === undefined) return undefined
    const body = Buffer.from(bodyText, 'base64url')
    if (body.length < 16) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, Buffer.from(ivText, 'base64url'))
      decipher.setAuthTag(body.subarray(body.length - 16))
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }

  sealJson (value: unknown): string { return this.seal(JSON.stringify(value)) }

  openJson<T> (sealed: string | undefined): T | undefined {
    if (sealed === undefined) return undefined
    const text = this.open(sealed)
    return text === undefined ? undefined : JSON.parse(text) as T
  }
}
