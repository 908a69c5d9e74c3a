// The session: the secret its cookie and sealed tokens hang on, where it is stored, its
// cookies and how long it lasts.
import { EnvReader, type Section } from './readers.js'
import type { IdentityProviderSettings } from './identity-provider.js'
import { readRedis, type RedisSettings } from './redis.js'

export type SessionStoreKind = 'memory' | 'redis'

export interface SessionSettings {
  /** First one signs and encrypts; all verify (rotation signs nobody out). */
  sessionSecrets: string[]
  sessionStore: SessionStoreKind
  /** Where the Redis store is (one server, Sentinel or Cluster); undefined for the memory store. */
  redis: RedisSettings | undefined
  sessionExpirySeconds: number
  /** With OPENID_REUSE_TOKENS, how long refreshing may keep a session alive in all. */
  sessionMaxAgeSeconds: number
  memoryStoreMaxSessions: number
  /** Cookie name: `__Host-` prefixed and Secure when DOMAIN_SERVER is https. */
  cookieName: string
  /** The short-lived sealed cookie holding this browser's pending sign-ins. */
  loginCookieName: string
  secureCookies: boolean
}

export function parseSession (env: NodeJS.ProcessEnv, idp: Pick<IdentityProviderSettings, 'publicOrigin'>): Section<SessionSettings> {
  const r = new EnvReader(env)
  const secretRaw = r.required('OPENID_SESSION_SECRET', 'set it to a random string of at least 32 characters, e.g. the output of `openssl rand -hex 32`')
  const sessionSecrets = secretRaw === '' ? [] : secretRaw.split(',').map(s => s.trim())
  if (sessionSecrets.some(s => s.length < 32)) {
    r.problem('OPENID_SESSION_SECRET', 'OPENID_SESSION_SECRET must be at least 32 characters (each, when a comma-separated rotation list); generate one with `openssl rand -hex 32`.')
  }

  const sessionStore = r.oneOf<SessionStoreKind>('SESSION_STORE', ['memory', 'redis'], 'memory', '"memory" or "redis"')
  const redis = readRedis(r, sessionStore === 'redis')

  const sessionExpirySeconds = r.int('SESSION_EXPIRY_SECONDS', 12 * 3600, 60, 90 * 24 * 3600)
  const memoryStoreMaxSessions = r.int('SESSION_MEMORY_MAX', 100_000, 100, 10_000_000)
  const sessionMaxAgeSeconds = r.int('SESSION_MAX_AGE_SECONDS', 7 * 24 * 3600, 60, 90 * 24 * 3600)

  const secureCookies = idp.publicOrigin.startsWith('https:')
  return r.section({
    sessionSecrets,
    sessionStore,
    redis,
    sessionExpirySeconds,
    sessionMaxAgeSeconds,
    memoryStoreMaxSessions,
    cookieName: secureCookies ? '__Host-entra-gw' : 'entra-gw',
    loginCookieName: secureCookies ? '__Host-entra-gw-login' : 'entra-gw-login',
    secureCookies
  })
}
