// Keeping a session true: the access token is refreshed before it expires, and roles and
// groups are re-read at every refresh and at least every AUTHZ_RECHECK_SECONDS. Exactly one
// refresh runs per session however many requests arrive together: single-flight in this
// process, and a lock in the session store across replicas. While another replica holds that
// lock (or a crashed one left it), a still-valid token serves the request at once; only an
// expired one waits for the lock.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { keepInSession, keepInSideEntry, keptTokens, refreshSignInTokens, revocationOf, TokenJar, RefreshError, type TokenSet } from './jar.js'
import { readPrincipal } from './principal.js'
import { StringPool } from '../principal/principal.js'
import type { GraphOptions } from '../graph/client.js'

/** What a request may do after the freshness check ('busy': expired, and another replica kept the refresh lock). */
export type Freshness = 'ok' | 'ended' | 'unavailable' | 'busy'

export interface Tokens {
  readonly graph: GraphOptions
  /** Shares tenant, role and group strings between the principals of this process. */
  readonly pool: StringPool
  /** Whether a refresh or re-check is due (the session's roles and tokens may be stale). */
  isDue: (request: FastifyRequest) => boolean
  /** Refreshes/rechecks the session when due; see Freshness. */
  ensureFresh: (request: FastifyRequest) => Promise<Freshness>
  /**
   * The sign-in access token, from the session itself (per request, no store read); kept there
   * only when this configuration uses it (forwarding, Graph, the token endpoint).
   */
  accessToken: (request: FastifyRequest) => { token: string, expiresAt: number | undefined } | undefined
  /** All the session's tokens, from their side entry in the store. */
  open: (request: FastifyRequest) => Promise<TokenSet | undefined>
  /** Keeps a token set for the session: the side entry, and the access token in the session. */
  keep: (request: FastifyRequest, set: TokenSet) => Promise<void>
  /** Drops the side entry (the session is being destroyed). */
  forget: (request: FastifyRequest) => Promise<void>
  /**
   * Runs `fn` with the session's tokens under the session's refresh lock and keeps whatever
   * the jar redeemed (rotated refresh token, cached resource tokens).
   */
  withJar: <T>(request: FastifyRequest, fn: (jar: TokenJar) => Promise<T>) => Promise<T>
  /**
   * Ends the session when `err` says the user's session with the IdP was revoked (revocationOf:
   * invalid_grant, a claims challenge from the token endpoint or Graph); true when it did.
   * withJar and the refresh do this themselves; callers of Graph with a token from withJar call it.
   */
  endIfRevoked: (request: FastifyRequest, err: unknown) => Promise<boolean>
  /** Drops the side entry of a session ended from elsewhere (the IdP's logout). */
  forgetSession: (sessionId: string) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    tokens: Tokens
  }
}

/** exclusive() could not have the lock in time. */
const BUSY = Symbol('busy')
/** After a failed refresh (IdP down), wait this long before trying again. */
const RETRY_AFTER_FAILURE_MS = 15_000
/** After Graph failed for an overage user, re-check this soon. */
const AUTHZ_ERROR_RETRY_MS = 30_000

async function tokensPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const sealer = app.sealer
  const graph: GraphOptions = {
    baseUrl: config.graphApiUrl,
    fetch: app.egress.fetch,
    onThrottle: () => app.metrics.graphThrottles.inc(),
    onResult: (ok: boolean) => app.metrics.graphCalls.inc({ result: ok ? 'success' : 'failure' })
  }
  const store = app.sessionStoreImpl
  const pool = new StringPool()
  const lockTtlMs = config.refreshLockSeconds * 1000
  /** A request with an expired token waits this long for the lock: past a crashed holder's TTL, plus a refresh. */
  const lockWaitMs = 2 * lockTtlMs
  const inflight = new Map<string, Promise<Freshness>>()
  /** Session id → epoch ms before which a failed refresh is not retried. Bounded below. */
  const backoff = new Map<string, number>()

  function due (request: FastifyRequest, now: number): boolean {
    const s = request.session
    const user = s.user
    if (user === undefined) return false
    if (s.accessExp !== undefined && (s.accessExp - config.tokenRefreshSkewSeconds) * 1000 <= now) return true
    if (user.checkedAt + config.authzRecheckSeconds * 1000 <= now) return true
    return user.authzError !== undefined && user.checkedAt + AUTHZ_ERROR_RETRY_MS <= now
  }

  // Tokens live in a side entry next to the session, read only for refresh, Graph, the token
  // endpoint and sign-out: the session, which every request reads, stays small. The access
  // token is also sealed into the session itself when this configuration forwards it or hands
  // it out, so those requests need no second read.
  const keepAccessToken = keepInSession(config)
  // The side entry keeps only what a later step reads (the memory store holds one per user).
  const sideEntry = keepInSideEntry(config)
  const auxKey = (request: FastifyRequest): string => `tokens:${request.session.sessionId}`

  const accessToken = (request: FastifyRequest): { token: string, expiresAt: number | undefined } | undefined => {
    const s = request.session
    if (s.sealed === undefined) return undefined
    const v = sealer.openJson(s.sealed, `access:${s.sessionId}`) as { a?: unknown } | undefined
    return typeof v?.a === 'string' ? { token: v.a, expiresAt: s.accessExp } : undefined
  }

  async function open (request: FastifyRequest): Promise<TokenSet | undefined> {
    const set = sealer.openJson(await store.getAux(auxKey(request)), auxKey(request)) as TokenSet | undefined
    return set !== null && typeof set === 'object' && (set.refreshToken === undefined || typeof set.refreshToken === 'string') ? set : undefined
  }

  /** The side entry lives as long as the session's cookie. */
  async function putAux (request: FastifyRequest, set: TokenSet): Promise<void> {
    const expiresAt = request.session.expiresAt
    const ttl = expiresAt > 0 ? expiresAt - Date.now() : config.sessionExpirySeconds * 1000
    await store.setAux(auxKey(request), sealer.sealBytes(JSON.stringify(keptTokens(set, sideEntry)), auxKey(request)), Math.max(1000, ttl))
  }

  async function keep (request: FastifyRequest, set: TokenSet): Promise<void> {
    const s = request.session
    await putAux(request, set)
    s.sealed = keepAccessToken && set.accessToken !== undefined ? sealer.sealJson({ a: set.accessToken }, `access:${s.sessionId}`) : undefined
    s.accessExp = set.accessTokenExpiresAt
  }

  async function forget (request: FastifyRequest): Promise<void> {
    await store.deleteAux(auxKey(request)).catch(() => {})
  }

  /** Session id → the tail of the work queued on it in this process. */
  const queues = new Map<string, Promise<unknown>>()

  /**
   * Runs fn exclusively for this session: after any earlier work on it in this process, under
   * the store's lock (other replicas), with the session re-read from the store first. Every
   * use of the refresh token goes through here, so a rotated token is never used twice.
   * BUSY when another holder kept the lock for `waitMs`.
   */
  async function exclusive<T> (request: FastifyRequest, fn: () => Promise<T>, waitMs = lockWaitMs): Promise<T | typeof BUSY> {
    const sid = request.session.sessionId
    const before = queues.get(sid) ?? Promise.resolve()
    const run = before.catch(() => {}).then(async () => {
      const lock = await store.lock(`refresh:${sid}`, lockTtlMs, waitMs)
      if (lock === undefined) return BUSY
      // A refresh (Graph paging, a slow IdP) may outlast the TTL: the lock is kept while it
      // runs, or another replica would redeem the same refresh token meanwhile.
      const keeper = setInterval(() => {
        lock.extend().then(kept => {
          if (!kept) request.log.warn({ event: 'refresh_lock_lost', ip: request.ip }, 'the refresh lock lapsed while in use')
        }, () => {})
      }, Math.max(100, Math.floor(lockTtlMs / 3)))
      keeper.unref()
      try {
        await request.session.reload()
        return await fn()
      } finally {
        clearInterval(keeper)
        // Not released (store down): it lapses by itself after its TTL.
        await lock.release().catch(() => {})
      }
    })
    const tail: Promise<unknown> = run.catch(() => {}).then(() => { if (queues.get(sid) === tail) queues.delete(sid) })
    queues.set(sid, tail)
    return await run
  }

  /** Leader work: under the store lock, with the newest session state from the store. */
  async function refresh (request: FastifyRequest): Promise<Freshness> {
    const exp = request.session.accessExp
    const stillValid = exp === undefined || exp * 1000 > Date.now()
    // Another replica may have refreshed (and rotated the refresh token) meanwhile: exclusive()
    // re-reads the session, and the work is skipped when it is no longer due.
    const outcome = await exclusive(request, async (): Promise<Freshness> => {
      const now = Date.now()
      const s = request.session
      const user = s.user
      if (user === undefined) return 'ended'
      if (!due(request, now)) return 'ok'
      const set = await open(request)
      if (set === undefined) return await end(request, 'tokens_unreadable')
      const tokenValid = s.accessExp === undefined || s.accessExp * 1000 > now
      try {
        const oidc = await app.idp.get()
        const refreshed = await refreshSignInTokens(oidc, set, config.signInScope)
        const jar = new TokenJar(oidc, refreshed.set)
        const next = await readPrincipal({ config, oidc, jar, graph, pool }, refreshed.claims, user.signedInAt)
        // The IdP session does not change at a refresh (its ID token may leave `sid` out).
        next.sid ??= user.sid
        s.user = next
        if (config.reuseTokens) {
          // The session slides with Entra's refresh token, within the absolute bound.
          s.setMaxAge(Math.max(1000, Math.min(config.sessionExpirySeconds * 1000, user.signedInAt + config.sessionMaxAgeSeconds * 1000 - now)))
        }
        await keep(request, jar.set)
        await s.save()
        backoff.delete(s.sessionId)
        app.metrics.refreshes.inc({ result: 'success' })
        request.log.info({ event: 'token_refresh', user: next.userId, tenant: next.tenantId, ip: request.ip, authzError: next.authzError }, 'tokens refreshed and authorization re-read')
        return 'ok'
      } catch (err) {
        const failure = err instanceof RefreshError ? err : undefined
        const revoked = revocationOf(err)
        app.metrics.refreshes.inc({ result: failure?.reason ?? (revoked !== undefined ? 'revoked' : 'error') })
        // Revoked: never tried again with the same refresh token; the user signs in again.
        if (revoked !== undefined) return await end(request, failure?.reason ?? 'revoked', revoked)
        if (failure?.reason === 'no_refresh_token') return await end(request, failure.reason, failure.idpError)
        request.log.warn({ event: 'refresh_failed', user: user.userId, tenant: user.tenantId, ip: request.ip, reason: failure?.reason ?? 'error', detail: (err as Error).message, stillValid: tokenValid }, 'token refresh failed')
        if (backoff.size > 10_000) backoff.clear()
        backoff.set(s.sessionId, now + RETRY_AFTER_FAILURE_MS)
        return tokenValid ? 'ok' : 'unavailable'
      }
    }, stillValid ? 0 : lockWaitMs)
    if (outcome !== BUSY) return outcome
    // Another replica is refreshing, or crashed holding the lock: a valid token still serves,
    // and the next request tries again (the lock lapses after its TTL).
    if (stillValid) return 'ok'
    const user = request.session.user
    app.metrics.refreshes.inc({ result: 'lock_busy' })
    request.log.warn({ event: 'refresh_failed', user: user?.userId, tenant: user?.tenantId, ip: request.ip, reason: 'lock_busy', waitedMs: lockWaitMs, stillValid }, 'token refresh failed')
    return 'busy'
  }

  async function end (request: FastifyRequest, reason: string, idpError?: string): Promise<Freshness> {
    const user = request.session.user
    request.log.info({ event: 'session_end', user: user?.userId, tenant: user?.tenantId, reason, idpError, ip: request.ip }, 'session ended')
    await forget(request)
    await request.session.destroy()
    return 'ended'
  }

  async function ensureFresh (request: FastifyRequest): Promise<Freshness> {
    const now = Date.now()
    if (!due(request, now)) return 'ok'
    const sid = request.session.sessionId
    const retryAt = backoff.get(sid)
    if (retryAt !== undefined && retryAt > now) {
      const exp = request.session.accessExp
      return exp === undefined || exp * 1000 > now ? 'ok' : 'unavailable'
    }
    const running = inflight.get(sid)
    if (running !== undefined) {
      const outcome = await running
      // Follow the leader: its saved session is the truth now.
      if (outcome !== 'ended') await request.session.reload()
      return outcome
    }
    const p = refresh(request).catch((err: unknown) => {
      request.log.error({ event: 'refresh_failed', reason: 'internal', detail: (err as Error).message }, 'token refresh failed')
      return 'unavailable' as const
    }).finally(() => inflight.delete(sid))
    inflight.set(sid, p)
    return await p
  }

  async function endIfRevoked (request: FastifyRequest, err: unknown): Promise<boolean> {
    const code = revocationOf(err)
    if (code === undefined || request.session.user === undefined) return false
    await end(request, err instanceof RefreshError ? err.reason : 'revoked', code)
    return true
  }

  async function withJar<T> (request: FastifyRequest, fn: (jar: TokenJar) => Promise<T>): Promise<T> {
    try {
      return await jarRun(request, fn)
    } catch (err) {
      await endIfRevoked(request, err)
      throw err
    }
  }

  async function jarRun<T> (request: FastifyRequest, fn: (jar: TokenJar) => Promise<T>): Promise<T> {
    const outcome = await exclusive(request, async () => {
      const set = await open(request)
      if (set === undefined) throw new RefreshError('no_refresh_token', 'the session holds no tokens')
      const jar = new TokenJar(await app.idp.get(), set)
      try {
        return await fn(jar)
      } finally {
        // A rotated refresh token or a new resource token: kept in the side entry only.
        if (jar.set !== set) await putAux(request, jar.set)
      }
    })
    if (outcome === BUSY) throw new Error('another gateway kept the session\'s refresh lock')
    return outcome
  }

  const forgetSession = async (sessionId: string): Promise<void> => { await store.deleteAux(`tokens:${sessionId}`) }

  app.decorate('tokens', { graph, pool, isDue: (request: FastifyRequest) => due(request, Date.now()), ensureFresh, accessToken, open, keep, forget, withJar, endIfRevoked, forgetSession })
}

export default fp(tokensPlugin, { name: 'tokens', fastify: '5.x', dependencies: ['session', 'discovery', 'metrics', 'egress'] })
