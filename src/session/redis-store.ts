// Redis session store: sessions survive restarts and are shared by replicas. Each entry
// carries a TTL equal to its cookie's remaining life, so Redis expires it by itself.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Session } from 'fastify'
import type { GatewayStore, HeldLock, StoredSession } from './store.js'
import { ttlOf } from './store.js'

const CONNECT_WAIT_MS = 2000

export interface RedisStoreOptions {
  url: string
  defaultTtlMs: number
  prefix?: string
}

export class RedisStore implements GatewayStore {
  readonly kind = 'redis' as const
  readonly client: Redis
  readonly #prefix: string
  readonly #defaultTtlMs: number

  constructor (opts: RedisStoreOptions) {
    // Fail fast instead of queueing commands while Redis is down: a request then gets a
    // clear 503 rather than hanging, and /readyz reports the store as down.
    this.client = new Redis(opts.url, {
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000)
    })
    // Connection errors are reported through ping() and the failing request; without a
    // listener ioredis would print every reconnect attempt as an unhandled error.
    this.client.on('error', () => {})
    this.#prefix = opts.prefix ?? 'entra-gw:sess:'
    this.#defaultTtlMs = opts.defaultTtlMs
  }

  /** Waits (briefly) for a connection that is being made, e.g. right after start. */
  async #ready (): Promise<Redis> {
    const c = this.client
    if (c.status === 'ready') return c
    if (c.status === 'end') throw new Error('the Redis connection is closed')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { c.off('ready', onReady); reject(new Error(`Redis is not reachable (${c.status})`)) }, CONNECT_WAIT_MS)
      const onReady = (): void => { clearTimeout(timer); resolve() }
      c.once('ready', onReady)
    })
    return c
  }

  set (sessionId: string, session: Session, callback: (err?: unknown) => void): void {
    const ttl = Math.ceil(ttlOf(session as StoredSession, this.#defaultTtlMs))
    const data = JSON.stringify(session)
    this.#ready().then(c => c.set(this.#prefix + sessionId, data, 'PX', ttl)).then(() => callback(), callback)
  }

  get (sessionId: string, callback: (err: unknown, result?: Session | null) => void): void {
    const key = this.#prefix + sessionId
    const c = this.client
    const p = c.status === 'ready' ? c.get(key) : this.#ready().then(r => r.get(key))
    p.then(
      (data) => callback(null, data === null ? null : JSON.parse(data) as Session),
      (err: unknown) => callback(err)
    )
  }

  destroy (sessionId: string, callback: (err?: unknown) => void): void {
    this.#ready().then(c => c.del(this.#prefix + sessionId)).then(() => callback(), callback)
  }

  async ping (): Promise<void> {
    await (await this.#ready()).ping()
  }

  async lock (name: string, ttlMs: number, waitMs: number): Promise<HeldLock | undefined> {
    const c = await this.#ready()
    const key = `entra-gw:lock:${name}`
    const token = randomBytes(16).toString('hex')
    const deadline = Date.now() + waitMs
    let delay = 20
    // Another replica holds it while it refreshes; poll briefly rather than refresh twice
    // (a second refresh with a rotated-away refresh token would end the session).
    while ((await c.set(key, token, 'PX', ttlMs, 'NX')) === null) {
      if (Date.now() + delay > deadline) return undefined
      await new Promise(resolve => setTimeout(resolve, delay))
      delay = Math.min(delay * 2, 200)
    }
    return {
      // Only our own lock: it may have lapsed and been taken by another replica.
      release: async () => {
        await c.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, token)
      },
      extend: async () => {
        const kept = await c.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end", 1, key, token, ttlMs)
        return kept === 1
      }
    }
  }

  async getAux (key: string): Promise<string | undefined> {
    return (await (await this.#ready()).get(`entra-gw:aux:${key}`)) ?? undefined
  }

  async setAux (key: string, value: string, ttlMs: number): Promise<void> {
    await (await this.#ready()).set(`entra-gw:aux:${key}`, value, 'PX', Math.max(1, Math.ceil(ttlMs)))
  }

  async deleteAux (key: string): Promise<void> {
    await (await this.#ready()).del(`entra-gw:aux:${key}`)
  }

  async putIfAbsent (key: string, value: string): Promise<string> {
    const c = await this.#ready()
    const full = `entra-gw:shared:${key}`
    await c.set(full, value, 'NX')
    return (await c.get(full)) ?? value
  }

  async close (): Promise<void> {
    this.client.disconnect()
  }
}
