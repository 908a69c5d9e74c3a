// One interface for every session store, so the memory and Redis stores run the same tests.
import type { SessionStore } from '@fastify/session'

export interface GatewayStore extends SessionStore {
  readonly kind: 'memory' | 'redis'
  /** Resolves when the store answers; used by /readyz. */
  ping: () => Promise<void>
  /**
   * Holds `name` exclusively among every gateway sharing this store (token refresh) for `ttlMs`,
   * waiting up to `waitMs` for it (0: one attempt); resolves to the held lock, or undefined when
   * another holder kept it all that time. In-process only for the memory store.
   */
  lock: (name: string, ttlMs: number, waitMs: number) => Promise<HeldLock | undefined>
  /**
   * A side entry next to a session (its sealed tokens), read only when needed, so the session
   * itself, which every request parses, stays small.
   */
  getAux: (key: string) => Promise<string | undefined>
  setAux: (key: string, value: string, ttlMs: number) => Promise<void>
  deleteAux: (key: string) => Promise<void>
  /** Stores `value` under `key` unless one is there; resolves to the value kept (shared keys). */
  putIfAbsent: (key: string, value: string) => Promise<string>
  close: () => Promise<void>
}

/** A lock held in the store; it lapses by itself after its TTL (a holder that crashed). */
export interface HeldLock {
  /** Gives it up, if it is still ours (it may have lapsed and been taken by another holder). */
  release: () => Promise<void>
  /** Another TTL from now, for work that outlasts it; false when the lock is no longer ours. */
  extend: () => Promise<boolean>
}

/** What @fastify/session hands a store: its own fields plus the cookie whose expiry bounds the entry. */
export interface StoredSession { cookie?: { expires?: Date | string | null, originalMaxAge?: number | null } }

/** Milliseconds until the session's cookie expires (the store entry must not outlive it). */
export function ttlOf (session: StoredSession, fallbackMs: number): number {
  const expires = session.cookie?.expires
  if (expires != null) return Math.max(1, new Date(expires).getTime() - Date.now())
  return session.cookie?.originalMaxAge ?? fallbackMs
}
