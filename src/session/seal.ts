// Values at rest (tokens, the sign-out marker, login transactions, the identity key): sealed
// with AES-256-GCM under keys derived from OPENID_SESSION_SECRET (keys.ts), so a dump of the
// store or a stolen cookie shows nothing. Each value is bound by associated data to its
// purpose and, where it belongs to one, its session: a sealed value copied to another place or
// session does not open. The first key seals and every one opens (rotation).
//
// Two encodings of the same thing: bytes for the store's side entries (held as Buffers, a
// third smaller than text) and base64url text where only text fits (cookies, session fields).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

interface SealKey { id: Buffer, textId: string, key: Buffer }

const VERSION = 2
const ID_BYTES = 6
const IV_BYTES = 12
const TAG_BYTES = 16
const HEAD = 1 + ID_BYTES + IV_BYTES

export class Sealer {
  readonly #keys: SealKey[]
  readonly #byId: Map<string, SealKey>

  /** `keys`: 32-byte AES keys, the sealing one first (see keys.ts). */
  constructor (keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error('at least one key is required')
    this.#keys = keys.map(key => {
      // A short, non-secret key id lets open() pick the right key without trying them all.
      const id = createHash('sha256').update(key).digest().subarray(0, ID_BYTES)
      return { id, textId: id.toString('base64url'), key }
    })
    this.#byId = new Map(this.#keys.map(k => [k.textId, k]))
  }

  /** [version][key id][iv][ciphertext][tag]; `aad` names what the value is for (`tokens:<session id>`). */
  sealBytes (plaintext: string, aad: string): Buffer {
    const k = this.#keys[0] as SealKey
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', k.key, iv)
    cipher.setAAD(Buffer.from(aad))
    const body = cipher.update(plaintext, 'utf8')
    const last = cipher.final()
    // Its own allocation, not a slice of Node's shared pool: a long-lived side entry must not
    // keep a pool slab alive after its neighbours are gone.
    const out = Buffer.allocUnsafeSlow(HEAD + body.length + last.length + TAG_BYTES)
    out[0] = VERSION
    k.id.copy(out, 1)
    iv.copy(out, 1 + ID_BYTES)
    body.copy(out, HEAD)
    last.copy(out, HEAD + body.length)
    cipher.getAuthTag().copy(out, HEAD + body.length + last.length)
    return out
  }

  /** The plaintext, or undefined when sealed under an unknown key, for another purpose, or tampered with. */
  openBytes (sealed: Uint8Array, aad: string): string | undefined {
    if (sealed.length < HEAD + TAG_BYTES || sealed[0] !== VERSION) return undefined
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length)
    const k = this.#byId.get(buf.subarray(1, 1 + ID_BYTES).toString('base64url'))
    if (k === undefined) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, buf.subarray(1 + ID_BYTES, HEAD))
      decipher.setAAD(Buffer.from(aad))
      decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES))
      return Buffer.concat([decipher.update(buf.subarray(HEAD, buf.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }

  seal (plaintext: string, aad: string): string { return this.sealBytes(plaintext, aad).toString('base64url') }

  open (sealed: string, aad: string): string | undefined {
    // The earlier text form `v2.<key id>.<iv>.<body>` (same keys, same key ids): values sealed
    // before the byte format (the shared identity key, live sessions) still open.
    if (sealed.startsWith('v2.')) {
      const [, id, iv, body, extra] = sealed.split('.')
      if (id === undefined || iv === undefined || body === undefined || extra !== undefined) return undefined
      return this.openBytes(Buffer.concat([Buffer.from([VERSION]), Buffer.from(id, 'base64url'), Buffer.from(iv, 'base64url'), Buffer.from(body, 'base64url')]), aad)
    }
    return this.openBytes(Buffer.from(sealed, 'base64url'), aad)
  }

  sealJson (value: unknown, aad: string): string { return this.seal(JSON.stringify(value), aad) }

  /** The parsed value; undefined when it does not open or is not JSON. Callers check its shape. */
  openJson (sealed: string | Uint8Array | undefined, aad: string): unknown {
    if (sealed === undefined) return undefined
    const text = typeof sealed === 'string' ? this.open(sealed, aad) : this.openBytes(sealed, aad)
    if (text === undefined) return undefined
    try {
      return JSON.parse(text) as unknown
    } catch {
      return undefined
    }
  }
}
