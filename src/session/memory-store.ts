// In-process session store: bounded (oldest evicted first) and expiring, so it cannot grow
// without limit. Entries are kept serialized: a stored session never holds a live request.
import type { Session } from 'fastify'
import type { GatewayStore, HeldLock, StoredSession } from './store.js'
import { ttlOf } from './store.js'

interface Entry { data: string, expiresAt: number }

export interface MemoryStoreOptions {
  maxSessions: number
  defaultTtlMs: number
  sweepIntervalMs?: number
}

export class MemoryStore implements GatewayStore {
  readonly kind = 'memory' as const
  readonly #entries = new Map<string, Entry>()
  readonly #max: number
  readonly #defaultTtlMs: number
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: MemoryStoreOptions) {
    this.#max = opts.maxSessions
    this.#defaultTtlMs = opts.defaultTtlMs
    this.#sweeper = setInterval(() => this.sweep(), opts.sweepIntervalMs ?? 60_000)
    this.#sweeper.unref()
  }

  get size (): number { return this.#entries.size }

  set (sessionId: string, session: Session, callback: (err?: unknown) => void): void {
    const expiresAt = Date.now() + ttlOf(session as StoredSession, this.#defaultTtlMs)
    // Re-inserting moves the entry to the end, so the Map's order is least recently written first.
    this.#entries.delete(sessionId)
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    this.#entries.set(sessionId, { data: JSON.stringify(session), expiresAt })
    callback()
  }

  get (sessionId: string, callback: (err: unknown, result?: Session | null) => void): void {
    const entry = this.#entries.get(sessionId)
    if (entry === undefined) { callback(null, null); return }
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(sessionId)
      callback(null, null)
      return
    }
    callback(null, JSON.parse(entry.data) as Session)
  }

  destroy (sessionId: string, callback: (err?: unknown) => void): void {
    this.#entries.delete(sessionId)
    callback()
  }

  /** Drops expired entries; runs on a timer so memory follows the live session count. */
  sweep (): void {
    const now = Date.now()
    for (const map of [this.#entries, this.#aux]) {
      for (const [id, entry] of map) {
        if (entry.expiresAt <= now) map.delete(id)
      }
    }
  }

  async ping (): Promise<void> {}

  // One process: the refresh single-flight already serializes, so the lock is free.
  async lock (): Promise<HeldLock> {
    return { release: async () => {}, extend: async () => true }
  }

  readonly #aux = new Map<string, Entry>()

  async getAux (key: string): Promise<string | undefined> {
    const entry = this.#aux.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#aux.delete(key)
      return undefined
    }
    return entry.data
  }

  async setAux (key: string, value: string, ttlMs: number): Promise<void> {
    this.#aux.delete(key)
    if (this.#aux.size >= this.#max) {
      const oldest = this.#aux.keys().next().value
      if (oldest !== undefined) this.#aux.delete(oldest)
    }
    this.#aux.set(key, { data: value, expiresAt: Date.now() + ttlMs })
  }

  async deleteAux (key: string): Promise<void> {
    this.#aux.delete(key)
  }

  readonly #shared = new Map<string, string>()
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
  }
}
