// One interface for every session store, so the memory and Redis stores run the same tests.
import type { SessionData } from './session.js'

/** A session as a store keeps it: the data and the epoch ms at which it ends. */
export interface StoredSession {
  data: SessionData
  expiresAt: number
}

/** Thrown by a store that cannot answer (down, frozen, timed out): the request gets a 503. */
export class StoreUnavailableError extends Error {
  readonly statusCode = 503
  readonly code = 'session_store_unavailable'
  constructor (message: string, opts: { cause?: unknown } = {}) {
    super(message, opts)
    this.name = 'StoreUnavailableError'
  }
}

export interface Lock {
  /** Lets go of the lock (only if still ours). */
  release: () => Promise<void>
  /** Pushes the lock's expiry out again (by its TTL, or `ttlMs`); false when it was no longer ours. */
  extend: (ttlMs?: number) => Promise<boolean>
}

export interface GatewayStore {
  readonly kind: 'memory' | 'redis'
  get: (id: string) => Promise<StoredSession | undefined>
  set: (id: string, session: StoredSession) => Promise<void>
  destroy: (id: string) => Promise<void>
  /** Resolves when the store answers; used by /readyz. */
  ping: () => Promise<void>
  /** False while the store is known to be down: requests then fail at once instead of waiting. */
  readonly up: boolean
  /**
   * Holds `name` exclusively among every gateway sharing this store (token refresh), waiting
   * up to `waitMs` (0: one try); resolves to the lock, or undefined when it stayed taken.
   */
  lock: (name: string, ttlMs: number, waitMs: number) => Promise<Lock | undefined>
  /**
   * A side entry next to a session (its sealed tokens), read only when needed, so the session
   * itself, which every request reads, stays small.
   */
  getAux: (key: string) => Promise<Buffer | undefined>
  setAux: (key: string, value: Buffer, ttlMs: number) => Promise<void>
  deleteAux: (key: string) => Promise<void>
  /**
   * Links a session to `key` (its IdP session's `sid`, its user's `sub`) until `expiresAt` (epoch
   * ms), so a logout from the IdP, which names only those, finds the session. A link never
   * outlives the expiry it was given.
   */
  link: (key: string, sessionId: string, expiresAt: number) => Promise<void>
  /** The sessions still linked to `key`, removing the links (each logout is acted on once). */
  takeLinked: (key: string) => Promise<string[]>
  /** True the first time `key` is seen within `ttlMs` (shared by every replica): replay checks. */
  firstUse: (key: string, ttlMs: number) => Promise<boolean>
  /** Stores `value` under `key` unless one is there; resolves to the value kept (shared keys). */
  putIfAbsent: (key: string, value: string) => Promise<string>
  close: () => Promise<void>
}
