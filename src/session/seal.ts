// Values at rest (tokens, the sign-out marker, login transactions, the identity key): sealed
// with AES-256-GCM under keys derived from OPENID_SESSION_SECRET, so a dump of the store or a
// stolen cookie shows nothing. Each value is bound by associated data to its purpose and,
// where it belongs to one, its session: a sealed value copied to another place or session
// does not open. With a rotation list the first secret seals and every one opens.
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

  /** `aad` names what the value is for (`tokens:<session id>`); open() must be given the same. */
  seal (plaintext: string, aad: string): string {
    const k = this.#keys[0] as SealKey
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', k.key, iv)
    cipher.setAAD(Buffer.from(aad))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `v2.${k.id}.${iv.toString('base64url')}.${body.toString('base64url')}`
  }

  /** The plaintext, or undefined when sealed under an unknown key, for another purpose, or tampered with. */
  open (sealed: string, aad: string): string | undefined {
    const [version, id, ivText, bodyText, extra] = sealed.split('.')
    if (version !== 'v2' || id === undefined || ivText === undefined || bodyText === undefined || extra !== undefined) return undefined
    const k = this.#byId.get(id)
    if (k === undefined) return undefined
    const iv = Buffer.from(ivText, 'base64url')
    const body = Buffer.from(bodyText, 'base64url')
    if (iv.length !== 12 || body.length < 16) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, iv)
      decipher.setAAD(Buffer.from(aad))
      decipher.setAuthTag(body.subarray(body.length - 16))
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }

  sealJson (value: unknown, aad: string): string { return this.seal(JSON.stringify(value), aad) }

  /** The parsed value; undefined when it does not open or is not JSON. Callers check its shape. */
  openJson (sealed: string | undefined, aad: string): unknown {
    if (sealed === undefined) return undefined
    const text = this.open(sealed, aad)
    if (text === undefined) return undefined
    try {
      return JSON.parse(text) as unknown
    } catch {
      return undefined
    }
  }
}
