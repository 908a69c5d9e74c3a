// Sessions: an opaque signed cookie naming server-side state in the chosen store. Reading one
// costs one HMAC (@fastify/cookie's signer, with secret rotation) and one store read (a Map
// lookup in memory); nothing is serialized, hashed or re-signed per request, and nothing is
// written unless sign-in, refresh or sign-out changes the session (they save explicitly).
import { randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import { signerFactory } from '@fastify/cookie'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { GatewayStore } from './store.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import { Session, type SessionContext } from './session.js'
import { readCookie, serializeCookie } from './cookies.js'
import { sessionKeys } from './keys.js'
import type { Sealer } from './seal.js'

/** Verified cookie values kept at most: past it the cache starts over. */
const VERIFIED_MAX = 10_000

declare module 'fastify' {
  interface FastifyRequest {
    /** This browser's session; set for every route except those with `config: { session: false }`. */
    session: Session
  }
  interface FastifyInstance {
    sessionStoreImpl: GatewayStore
    /** Seals values at rest under OPENID_SESSION_SECRET (keys.ts derives every key). */
    sealer: Sealer
  }
  interface FastifyContextConfig {
    /** false: the route never needs a session (health, assets), so none is read. */
    session?: boolean
  }
}

export function createStore (config: GatewayConfig, log?: FastifyBaseLogger): GatewayStore {
  if (config.sessionStore === 'redis') {
    return new RedisStore({
      redis: config.redis,
      // One line when the outage starts and one when it ends, never one per request.
      onStateChange: (up, reason) => {
        if (up) log?.info({ event: 'session_store_up' }, 'the session store answers again')
        else log?.warn({ event: 'session_store_down', reason }, 'the session store is not answering; requests get 503 until it is back')
      }
    })
  }
  return new MemoryStore({ maxSessions: config.memoryStoreMaxSessions })
}

async function sessionPlugin (app: FastifyInstance, opts: { config: GatewayConfig, store?: GatewayStore }): Promise<void> {
  const { config } = opts
  const store = opts.store ?? createStore(config, app.log)
  app.decorate('sessionStoreImpl', store)
  if (opts.store === undefined) app.addHook('onClose', async () => { await store.close() })

  const name = config.cookieName
  const flags = { secure: config.secureCookies, domain: config.cookieDomain }
  // COOKIE_DOMAIN renamed the cookie (`__Host-` to `__Secure-`): a browser's old one is still
  // read and its session carried over under the new name, so nobody is signed out.
  const renamedFrom = config.hostOnlyCookies?.session !== name ? config.hostOnlyCookies?.session : undefined
  const keys = sessionKeys(config.sessionSecrets)
  app.decorate('sealer', keys.sealer)
  const signer = signerFactory(keys.cookieSecrets)
  const ctx: SessionContext = {
    store,
    newId: () => randomBytes(18).toString('base64url'),
    cookie: (id, expiresAt) => serializeCookie(name, signer.sign(id), expiresAt - Date.now(), flags),
    clearCookie: serializeCookie(name, '', 0, flags),
    defaultTtlMs: config.sessionExpirySeconds * 1000
  }

  // Cookies whose signature was verified, by value: a browser sends the same cookie on every
  // request, and the HMAC was ~7% of a proxied request's CPU. Only valid values are kept (an
  // invalid one is checked every time), and what a value names is still looked up in the
  // store, so a signed-out session stays signed out.
  const verified = new Map<string, { value: string, renew: boolean }>()

  async function load (cookieHeader: string | undefined): Promise<Session> {
    let value = readCookie(cookieHeader, name)
    let carryOver = false
    if (value === undefined && renamedFrom !== undefined) {
      value = readCookie(cookieHeader, renamedFrom)
      carryOver = value !== undefined
    }
    if (value === undefined || value === '') return new Session(ctx)
    let unsigned = verified.get(value)
    if (unsigned === undefined) {
      const u = signer.unsign(value)
      if (!u.valid || u.value === null) return new Session(ctx)
      unsigned = { value: u.value, renew: u.renew }
      if (verified.size >= VERIFIED_MAX) verified.clear()
      verified.set(value, unsigned)
    }
    const stored = await store.get(unsigned.value)
    // An id the store does not know is never adopted: a new session gets a new id.
    if (stored === undefined) return new Session(ctx)
    const session = new Session(ctx, unsigned.value, stored)
    // Signed with a previous secret, or under the old name: re-signed with the current secret
    // under the current name, nobody is signed out.
    if (unsigned.renew || carryOver) session.setCookie = ctx.cookie(unsigned.value, stored.expiresAt)
    return session
  }

  app.decorateRequest('session', null as unknown as Session)
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.session === false) return
    request.session = await load(request.headers.cookie)
  })
  // Replies the gateway writes itself carry a changed session cookie here; the proxy adds it
  // to the upstream's answer itself.
  app.addHook('onSend', async (request, reply, payload) => {
    const cookie = request.session?.setCookie
    if (cookie !== undefined) {
      reply.header('set-cookie', cookie)
      request.session.setCookie = undefined
    }
    return payload
  })
}

export default fp(sessionPlugin, { name: 'session', fastify: '5.x' })
