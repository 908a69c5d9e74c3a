// A request's session: what the store holds for one signed-in browser, and the few explicit
// operations that change it. Nothing is saved behind the caller's back: sign-in, refresh and
// sign-out call save() or destroy(); a proxied request only reads. The data is replaced, never
// mutated, so the memory store can hand out its own object without copying.
import type { Principal } from '../principal/principal.js'
import type { GatewayStore } from './store.js'

export interface SessionData {
  /** Who signed in: the compact principal, held decoded (no parse per request). */
  user?: Principal
  /** The sign-in access token, sealed, when this configuration forwards it; every other token is sealed in the side entry `tokens:<id>`. */
  sealed?: string
  /** Epoch seconds when the sign-in access token expires (not secret; avoids unsealing per request). */
  accessExp?: number
  /** Sealed {idToken, logoutHint}: the Entra session still to end at the next navigation. */
  endSession?: string
}

/** What a session needs from its plugin: the store, new ids, and the cookie it writes. */
export interface SessionContext {
  store: GatewayStore
  newId: () => string
  /** The Set-Cookie value naming this session until `expiresAt`. */
  cookie: (id: string, expiresAt: number) => string
  /** The Set-Cookie value that removes the cookie. */
  clearCookie: string
  defaultTtlMs: number
}

const EMPTY: SessionData = Object.freeze({})

export class Session {
  readonly #ctx: SessionContext
  #id: string | undefined
  #data: SessionData
  #expiresAt: number
  /** Whether the store holds an entry under #id (else saving creates one). */
  #stored: boolean
  /** The expiry the browser's cookie carries (the one last written or read). */
  #savedExpiry: number | undefined
  /** The Set-Cookie this response must carry, when the session's cookie changed. */
  setCookie: string | undefined

  constructor (ctx: SessionContext, id?: string, stored?: { data: SessionData, expiresAt: number }) {
    this.#ctx = ctx
    this.#id = id
    this.#data = stored?.data ?? EMPTY
    this.#expiresAt = stored?.expiresAt ?? 0
    this.#stored = stored !== undefined
    this.#savedExpiry = stored?.expiresAt
  }

  /** The session id; a new one is drawn the first time an anonymous session needs it. */
  get sessionId (): string {
    this.#id ??= this.#ctx.newId()
    return this.#id
  }

  get user (): Principal | undefined { return this.#data.user }
  set user (v: Principal | undefined) { this.#data = { ...this.#data, user: v } }
  get sealed (): string | undefined { return this.#data.sealed }
  set sealed (v: string | undefined) { this.#data = { ...this.#data, sealed: v } }
  get accessExp (): number | undefined { return this.#data.accessExp }
  set accessExp (v: number | undefined) { this.#data = { ...this.#data, accessExp: v } }
  get endSession (): string | undefined { return this.#data.endSession }
  set endSession (v: string | undefined) { this.#data = { ...this.#data, endSession: v } }

  /** Epoch ms at which the session (store entry and cookie) ends. */
  get expiresAt (): number { return this.#expiresAt }
  /** Sets the session's remaining life; takes effect at the next save(). */
  setMaxAge (ms: number): void { this.#expiresAt = Date.now() + ms }

  /** Writes the session to the store and, when its id or expiry changed, its cookie. */
  async save (): Promise<void> {
    const id = this.sessionId
    if (this.#expiresAt <= Date.now()) this.#expiresAt = Date.now() + this.#ctx.defaultTtlMs
    const before = this.#stored ? this.#savedExpiry : undefined
    await this.#ctx.store.set(id, { data: this.#data, expiresAt: this.#expiresAt })
    if (!this.#stored || before !== this.#expiresAt) this.setCookie = this.#ctx.cookie(id, this.#expiresAt)
    this.#stored = true
    this.#savedExpiry = this.#expiresAt
  }

  /**
   * A new id for the same browser (sign-in): whatever id it had before, possibly planted by
   * someone else, is worth nothing afterwards. The old entry is removed; the data starts empty.
   */
  async regenerate (): Promise<void> {
    if (this.#stored && this.#id !== undefined) await this.#ctx.store.destroy(this.#id)
    this.#id = this.#ctx.newId()
    this.#data = EMPTY
    this.#stored = false
    this.#savedExpiry = undefined
  }

  /** Re-reads the session from the store (another request or replica may have changed it). */
  async reload (): Promise<void> {
    if (this.#id === undefined) return
    const stored = await this.#ctx.store.get(this.#id)
    this.#data = stored?.data ?? EMPTY
    this.#stored = stored !== undefined
    if (stored !== undefined) {
      this.#expiresAt = stored.expiresAt
      this.#savedExpiry = stored.expiresAt
    }
  }

  /** Ends the session: the store entry goes and the browser is told to drop the cookie. */
  async destroy (): Promise<void> {
    if (this.#id !== undefined) await this.#ctx.store.destroy(this.#id)
    this.abandon()
  }

  /**
   * Forgets the session in this request and tells the browser to drop the cookie, without
   * the store (which could not be reached): the entry then expires by itself.
   */
  abandon (): void {
    this.#data = EMPTY
    this.#stored = false
    this.#id = undefined
    this.setCookie = this.#ctx.clearCookie
  }
}
