// Redis session store: sessions survive restarts and are shared by replicas. Each entry
// carries a TTL equal to the session's remaining life, so Redis expires it by itself.
//
// Failing fast: every command has a timeout (a frozen Redis, connection open and no replies,
// would otherwise hang requests for ever), and once a command has failed for want of Redis
// the store is marked down: until a background probe gets an answer again every call fails
// at once with StoreUnavailableError (a 503), instead of costing each request the timeout.
//
// Sentinel and Cluster need nothing else: every command here names one key (the Lua scripts
// too), so no two keys ever have to share a Cluster slot, and no key needs a hash tag.
import { randomBytes } from 'node:crypto'
import { ReplyError } from 'ioredis'
import type { RedisSettings } from '../config.js'
import type { GatewayStore, Lock, StoredSession } from './store.js'
import { StoreUnavailableError } from './store.js'
import { createRedisClient, type RedisClient } from './redis-client.js'

/** How long one command may take before Redis counts as not answering. */
const COMMAND_TIMEOUT_MS = 2000
/** How long a call waits for the first connection right after start. */
const FIRST_CONNECT_WAIT_MS = 2000
const PROBE_INTERVAL_MS = 500
const RECONNECT_AFTER_END_MS = 1000
/** Replies meaning Redis is there but cannot serve sessions now. */
const UNAVAILABLE_REPLIES = /^(READONLY|OOM|MISCONF|BUSY|MASTERDOWN|LOADING|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)\b/

export interface RedisStoreOptions {
  /** Where Redis is: a redis:// URL, or the settings for one server, Sentinel or Cluster. */
  url?: string
  redis?: RedisSettings
  prefix?: string
  commandTimeoutMs?: number
  /** Told once when the store goes down and once when it is back (for one log line each). */
  onStateChange?: (up: boolean, reason: string) => void
}

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
// A sorted set per key, scored by each session's expiry: expired members are dropped on every
// link, and the key itself expires with its longest-lived member.
const LINK = "redis.call('zadd', KEYS[1], ARGV[1], ARGV[2]); redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[3]); local top = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES'); if top[2] then redis.call('pexpireat', KEYS[1], top[2]) end; return 1"
const TAKE = "local ids = redis.call('zrangebyscore', KEYS[1], ARGV[1], '+inf'); redis.call('del', KEYS[1]); return ids"
const EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"

export class RedisStore implements GatewayStore {
  readonly kind = 'redis' as const
  readonly client: RedisClient
  readonly #prefix: string
  readonly #onStateChange: (up: boolean, reason: string) => void
  #everReady = false
  #down = false
  #probe: NodeJS.Timeout | undefined
  #closed = false

  constructor (opts: RedisStoreOptions) {
    const settings = opts.redis ?? { target: { kind: 'url', url: opts.url ?? 'redis://127.0.0.1:6379/0' }, username: undefined, password: undefined, tls: false }
    this.client = createRedisClient(settings, {
      connectTimeoutMs: 2000,
      commandTimeoutMs: opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS,
      retry: (times) => Math.min(times * 200, 1000)
    })
    // Connection errors are reported through the state change and the failing request;
    // without a listener ioredis would print every reconnect attempt as an unhandled error.
    this.client.on('error', () => {})
    this.client.on('ready', () => { this.#everReady = true })
    // A client that has given up reconnecting (ioredis ends it when a reconnect fails in some
    // ways, e.g. through Sentinel while a failover is under way) is started again: a store must
    // come back by itself once Redis does.
    this.client.on('end', () => {
      if (this.#closed) return
      setTimeout(() => { if (!this.#closed && this.client.status === 'end') this.client.connect().catch(() => {}) }, RECONNECT_AFTER_END_MS).unref()
    })
    this.#prefix = opts.prefix ?? 'entra-gw:sess:'
    this.#onStateChange = opts.onStateChange ?? (() => {})
  }

  get up (): boolean { return !this.#down }

  #markDown (reason: string): void {
    if (this.#down || this.#closed) return
    this.#down = true
    this.#onStateChange(false, reason)
    this.#probe = setInterval(() => {
      if (this.client.status !== 'ready') return
      this.client.ping().then(() => this.#markUp(), () => {})
    }, PROBE_INTERVAL_MS)
    this.#probe.unref()
  }

  #markUp (): void {
    if (!this.#down) return
    this.#down = false
    clearInterval(this.#probe)
    this.#onStateChange(true, 'answering again')
  }

  async #waitFirstConnection (): Promise<void> {
    const c = this.client
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { c.off('ready', onReady); reject(new StoreUnavailableError(`Redis is not reachable (${c.status})`)) }, FIRST_CONNECT_WAIT_MS)
      const onReady = (): void => { clearTimeout(timer); resolve() }
      c.once('ready', onReady)
    })
  }

  /** Runs one store operation, failing at once while the store is known to be down. */
  async #run<T> (fn: (c: RedisClient) => Promise<T>): Promise<T> {
    if (this.#down) throw new StoreUnavailableError('the session store is not answering')
    const c = this.client
    if (c.status !== 'ready') {
      if (this.#everReady || c.status === 'end') {
        this.#markDown(`connection ${c.status}`)
        throw new StoreUnavailableError(`the session store connection is ${c.status}`)
      }
      try {
        await this.#waitFirstConnection()
      } catch (err) {
        this.#markDown('not reachable at start')
        throw err
      }
    }
    try {
      return await fn(c)
    } catch (err) {
      // A reply error is Redis answering: unavailable when it says it cannot serve (a replica
      // after failover, out of memory, ...), else a bug of ours. Anything else is Redis not answering.
      if (err instanceof ReplyError) {
        if (UNAVAILABLE_REPLIES.test((err as Error).message)) throw new StoreUnavailableError(`the session store refused: ${(err as Error).message}`, { cause: err })
        throw err
      }
      const reason = (err as Error).message
      this.#markDown(reason)
      throw new StoreUnavailableError(`the session store did not answer: ${reason}`, { cause: err })
    }
  }

  async get (id: string): Promise<StoredSession | undefined> {
    const text = await this.#run(async c => await c.get(this.#prefix + id))
    if (text === null) return undefined
    return JSON.parse(text) as StoredSession
  }

  async set (id: string, session: StoredSession): Promise<void> {
    const ttl = Math.max(1, Math.ceil(session.expiresAt - Date.now()))
    const text = JSON.stringify(session)
    await this.#run(async c => await c.set(this.#prefix + id, text, 'PX', ttl))
  }

  async destroy (id: string): Promise<void> {
    await this.#run(async c => await c.del(this.#prefix + id))
  }

  async ping (): Promise<void> {
    // Readiness asks Redis itself, even while the store is marked down.
    if (this.client.status !== 'ready') {
      if (this.#everReady || this.client.status === 'end') throw new StoreUnavailableError(`the session store connection is ${this.client.status}`)
      await this.#waitFirstConnection()
    }
    await this.client.ping()
    this.#markUp()
  }

  async lock (name: string, ttlMs: number, waitMs: number): Promise<Lock | undefined> {
    const key = `entra-gw:lock:${name}`
    const token = randomBytes(16).toString('hex')
    const deadline = Date.now() + waitMs
    let delay = 20
    // Another replica holds it while it refreshes: poll briefly rather than refresh twice
    // (a second refresh with a rotated-away refresh token would end the session).
    while ((await this.#run(async c => await c.set(key, token, 'PX', ttlMs, 'NX'))) === null) {
      if (Date.now() >= deadline) return undefined
      await new Promise(resolve => setTimeout(resolve, delay))
      delay = Math.min(delay * 2, 200)
    }
    return {
      // Only our own lock: it may have expired and been taken by another replica.
      release: async () => { await this.#run(async c => await c.eval(RELEASE, 1, key, token)) },
      extend: async (ms = ttlMs) => await this.#run(async c => await c.eval(EXTEND, 1, key, token, String(ms))) === 1
    }
  }

  async getAux (key: string): Promise<Buffer | undefined> {
    return (await this.#run(async c => await c.getBuffer(`entra-gw:aux:${key}`))) ?? undefined
  }

  async setAux (key: string, value: Buffer, ttlMs: number): Promise<void> {
    await this.#run(async c => await c.set(`entra-gw:aux:${key}`, value, 'PX', Math.max(1, Math.ceil(ttlMs))))
  }

  async deleteAux (key: string): Promise<void> {
    await this.#run(async c => await c.del(`entra-gw:aux:${key}`))
  }

  async link (key: string, sessionId: string, expiresAt: number): Promise<void> {
    await this.#run(async c => await c.eval(LINK, 1, `entra-gw:link:${key}`, String(Math.ceil(expiresAt)), sessionId, String(Date.now())))
  }

  async takeLinked (key: string): Promise<string[]> {
    return await this.#run(async c => await c.eval(TAKE, 1, `entra-gw:link:${key}`, String(Date.now())) as string[])
  }

  async firstUse (key: string, ttlMs: number): Promise<boolean> {
    return await this.#run(async c => await c.set(`entra-gw:once:${key}`, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX')) === 'OK'
  }

  async putIfAbsent (key: string, value: string): Promise<string> {
    const full = `entra-gw:shared:${key}`
    return await this.#run(async c => {
      await c.set(full, value, 'NX')
      return (await c.get(full)) ?? value
    })
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#probe)
    this.client.disconnect()
  }
}
