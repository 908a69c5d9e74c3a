// One interface for every session store, so the memory and Redis stores run the same tests.
import type { SessionStore } from '@fastify/session'

export interface GatewayStore extends SessionStore {
  readonly kind: 'memory' | 'redis'
  /** Resolves when the store answers; used by /readyz. */
  ping: () => Promise<void>
  /**
   * Holds `name` exclusively among every gateway sharing this store (token refresh), waiting
   * up to `waitMs`; resolves to a release function. In-process only for the memory store.
   */
  lock: (name: string, ttlMs: number, waitMs: number) => Promise<() => Promise<void>>
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

/** What @fastify/session hands a store: its own fields plus the cookie whose expiry bounds the entry. */
export interface StoredSession { cookie?: { expires?: Date | string | null, originalMaxAge?: number | null } }

/** Milliseconds until the session's cookie expires (the store entry must not outlive it). */
export function ttlOf (session: StoredSession, fallbackMs: number): number {
  const expires = session.cookie?.expires
  if (expires != null) return Math.max(1, new Date(expires).getTime() - Date.now())
  return session.cookie?.originalMaxAge ?? fallbackMs
}
