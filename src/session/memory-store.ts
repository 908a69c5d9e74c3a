// In-process session store: bounded (oldest evicted first) and expiring, so it cannot grow
// without limit. Sessions are held decoded: a request reads its session with a Map lookup,
// no parse. Only signed-in sessions are stored (login transactions live in a cookie), so
// nobody can fill it anonymously; entries are never mutated in place (the session layer
// copies on write), so a stored session never holds a live request's changes unsaved.
import type { GatewayStore, Lock, StoredSession } from './store.js'

interface AuxEntry { data: Buffer, expiresAt: number }

export interface MemoryStoreOptions {
  maxSessions: number
  sweepIntervalMs?: number
}

const FREE_LOCK: Lock = { release: async () => {}, extend: async () => true }

export class MemoryStore implements GatewayStore {
  readonly kind = 'memory' as const
  readonly up = true
  readonly #entries = new Map<string, StoredSession>()
  readonly #aux = new Map<string, AuxEntry>()
  readonly #shared = new Map<string, string>()
  /** key → session id → expiry (epoch ms). */
  readonly #links = new Map<string, Map<string, number>>()
  /** Replay keys → expiry (epoch ms). */
  readonly #seen = new Map<string, number>()
  readonly #max: number
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: MemoryStoreOptions) {
    this.#max = opts.maxSessions
    this.#sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  get size (): number { return this.#entries.size }

  async get (id: string): Promise<StoredSession | undefined> {
    const entry = this.#entries.get(id)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(id)
      return undefined
    }
    return entry
  }

  async set (id: string, session: StoredSession): Promise<void> {
    // Re-inserting moves the entry to the end, so the Map's order is least recently written first.
    this.#entries.delete(id)
    evictOldest(this.#entries, this.#max)
    this.#entries.set(id, session)
  }

  async destroy (id: string): Promise<void> {
    this.#entries.delete(id)
  }

  /** Drops expired entries; runs on a timer so memory follows the live session count. */
  sweep (): void {
    const now = Date.now()
    for (const map of [this.#entries, this.#aux]) {
      for (const [id, entry] of map) {
        if (entry.expiresAt <= now) map.delete(id)
      }
    }
    for (const [key, ids] of this.#links) {
      for (const [id, exp] of ids) if (exp <= now) ids.delete(id)
      if (ids.size === 0) this.#links.delete(key)
    }
    for (const [key, exp] of this.#seen) if (exp <= now) this.#seen.delete(key)
  }

  async link (key: string, sessionId: string, expiresAt: number): Promise<void> {
    let ids = this.#links.get(key)
    if (ids === undefined) {
      // Bounded like the sessions: about two links (sid, sub) per session.
      evictOldest(this.#links, 2 * this.#max)
      ids = new Map()
      this.#links.set(key, ids)
    }
    ids.set(sessionId, expiresAt)
  }

  async takeLinked (key: string): Promise<string[]> {
    const ids = this.#links.get(key)
    this.#links.delete(key)
    const now = Date.now()
    return ids === undefined ? [] : [...ids].filter(([, exp]) => exp > now).map(([id]) => id)
  }

  async firstUse (key: string, ttlMs: number): Promise<boolean> {
    const now = Date.now()
    const exp = this.#seen.get(key)
    if (exp !== undefined && exp > now) return false
    evictOldest(this.#seen, this.#max)
    this.#seen.set(key, now + ttlMs)
    return true
  }

  async ping (): Promise<void> {}

  // One process: the refresh single-flight already serializes, so the lock is free.
  async lock (): Promise<Lock> { return FREE_LOCK }

  async getAux (key: string): Promise<Buffer | undefined> {
    const entry = this.#aux.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#aux.delete(key)
      return undefined
    }
    return entry.data
  }

  async setAux (key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.#aux.delete(key)
    evictOldest(this.#aux, this.#max)
    this.#aux.set(key, { data: value, expiresAt: Date.now() + ttlMs })
  }

  async deleteAux (key: string): Promise<void> {
    this.#aux.delete(key)
  }

  async putIfAbsent (key: string, value: string): Promise<string> {
    const existing = this.#shared.get(key)
    if (existing !== undefined) return existing
    this.#shared.set(key, value)
    return value
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#entries.clear()
    this.#aux.clear()
    this.#links.clear()
    this.#seen.clear()
  }
}

function evictOldest (map: Map<string, unknown>, max: number): void {
  if (map.size < max) return
  const oldest = map.keys().next().value
  if (oldest !== undefined) map.delete(oldest)
}
