// Sessions: an opaque signed cookie pointing at server-side state in the chosen store.
// Saved only when changed (sign-in, sign-out, login transactions), so a proxied request costs
// a store read and no write or Set-Cookie.
import { deriveKey } from './keys.js'
import fp from 'fastify-plugin'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { GatewayStore } from './store.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import type { SessionUser } from '../auth/user.js'
import type { LoginTransaction } from '../auth/oidc.js'

declare module 'fastify' {
  interface Session {
    user?: SessionUser
    /** The sign-in access token, sealed, when this configuration forwards it; every other token is sealed in the store side entry `tokens:<id>`. */
    sealed?: string
    /** Epoch seconds when the sign-in access token expires (not secret; avoids unsealing per request). */
    accessExp?: number
    /** Login transactions started in this browser, by state; each usable once. */
    pending?: Record<string, LoginTransaction>
  }
  interface FastifyInstance {
    sessionStoreImpl: GatewayStore
  }
}

export function createStore (config: GatewayConfig): GatewayStore {
  const defaultTtlMs = config.sessionExpirySeconds * 1000
  if (config.sessionStore === 'redis') return new RedisStore({ url: config.redisUrl as string, defaultTtlMs })
  return new MemoryStore({ maxSessions: config.memoryStoreMaxSessions, defaultTtlMs })
}

async function sessionPlugin (app: FastifyInstance, opts: { config: GatewayConfig, store?: GatewayStore }): Promise<void> {
  const { config } = opts
  const store = opts.store ?? createStore(config)
  app.decorate('sessionStoreImpl', store)
  if (opts.store === undefined) app.addHook('onClose', async () => { await store.close() })

  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: config.sessionSecrets.map(s => deriveKey(s, 'session-cookie').toString('hex')),
    cookieName: config.cookieName,
    store,
    saveUninitialized: false,
    rolling: false,
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      path: '/',
      // @fastify/session refuses to save a Secure session over a plain-http hop (a TLS proxy
      // in front that is not in TRUSTED_PROXIES), which would loop sign-ins silently. The
      // browser talks https to DOMAIN_SERVER, so the flag is added below instead.
      secure: false,
      maxAge: config.sessionExpirySeconds * 1000
    }
  })

  if (config.secureCookies) {
    const name = config.cookieName
    app.addHook('onSend', async (_request, reply, payload) => {
      const header = reply.getHeader('set-cookie')
      if (header === undefined) return payload
      const list = Array.isArray(header) ? header : [String(header)]
      if (!list.some(c => c.startsWith(name + '='))) return payload
      reply.header('set-cookie', list.map(c => c.startsWith(name + '=') && !/;\s*secure/i.test(c) ? c + '; Secure' : c))
      return payload
    })
  }
}

export default fp(sessionPlugin, { name: 'session', fastify: '5.x' })
