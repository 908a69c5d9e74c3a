// The session: the secret its cookie and sealed tokens hang on, where it is stored, its
// cookies and how long it lasts.
import { EnvReader, type Section } from './readers.js'
import type { IdentityProviderSettings } from './identity-provider.js'

export type SessionStoreKind = 'memory' | 'redis'

export interface SessionSettings {
  /**
   * OPENID_SESSION_SECRET, then OPENID_SESSION_SECRET_PREVIOUS: the first signs and seals,
   * every one verifies and opens (rotation signs nobody out).
   */
  sessionSecrets: string[]
  sessionStore: SessionStoreKind
  redisUrl: string | undefined
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
  const secret = r.required('OPENID_SESSION_SECRET', 'set it to a random string of at least 32 characters, e.g. the output of `openssl rand -hex 32`')
  checkSecret(r, 'OPENID_SESSION_SECRET', secret)
  // The whole value is one secret, commas and all, as LibreChat reads it; rotation has its own setting.
  if (secret.includes(',')) {
    r.notice('OPENID_SESSION_SECRET', 'warn', 'OPENID_SESSION_SECRET contains a comma and is used whole, as one secret (as LibreChat does); if it was meant as a rotation list, set it to the newest secret alone and put the older ones in OPENID_SESSION_SECRET_PREVIOUS, or sessions made with them are ended.')
  }
  // Older secrets: they still verify cookies and open sealed values, and never sign or seal.
  const previous = r.list('OPENID_SESSION_SECRET_PREVIOUS')
  for (const old of previous) checkSecret(r, 'OPENID_SESSION_SECRET_PREVIOUS', old, 'each older secret')
  const sessionSecrets = secret === '' ? [] : [...new Set([secret, ...previous])]

  const sessionStore = r.oneOf<SessionStoreKind>('SESSION_STORE', ['memory', 'redis'], 'memory', '"memory" or "redis"')
  const redisUrlRaw = r.str('REDIS_URL')
  let redisUrl: string | undefined
  if (sessionStore === 'redis') {
    if (redisUrlRaw === undefined) r.problem('REDIS_URL', 'REDIS_URL is not set: SESSION_STORE=redis needs it, e.g. redis://redis:6379/0.')
    else if (!/^rediss?:\/\//.test(redisUrlRaw)) r.problem('REDIS_URL', 'REDIS_URL must start with redis:// or rediss:// (e.g. redis://redis:6379/0).')
    else redisUrl = redisUrlRaw
  }

  const sessionExpirySeconds = r.int('SESSION_EXPIRY_SECONDS', 12 * 3600, 60, 90 * 24 * 3600)
  const memoryStoreMaxSessions = r.int('SESSION_MEMORY_MAX', 100_000, 100, 10_000_000)
  const sessionMaxAgeSeconds = r.int('SESSION_MAX_AGE_SECONDS', 7 * 24 * 3600, 60, 90 * 24 * 3600)

  const secureCookies = idp.publicOrigin.startsWith('https:')
  return r.section({
    sessionSecrets,
    sessionStore,
    redisUrl,
    sessionExpirySeconds,
    sessionMaxAgeSeconds,
    memoryStoreMaxSessions,
    cookieName: secureCookies ? '__Host-entra-gw' : 'entra-gw',
    loginCookieName: secureCookies ? '__Host-entra-gw-login' : 'entra-gw-login',
    secureCookies
  })
}

/** Keys are derived with HKDF (session/keys.ts), so any secret long enough not to be guessed will do. */
export const MIN_SECRET_LENGTH = 16
export const GOOD_SECRET_LENGTH = 32
/** LibreChat's guide's placeholder: a value known to everyone is no secret. */
const GUIDE_PLACEHOLDER = /^any random string$/i

function checkSecret (r: EnvReader, name: string, secret: string, which = name): void {
  if (secret === '') return
  const fix = 'generate one with `openssl rand -hex 32`'
  if (GUIDE_PLACEHOLDER.test(secret)) {
    r.problem(name, `${name} still holds the guide's placeholder "Any random string"; ${fix}.`)
  } else if (secret.length < MIN_SECRET_LENGTH) {
    r.problem(name, `${name} is too short: ${which} must be at least ${MIN_SECRET_LENGTH} characters (${GOOD_SECRET_LENGTH} or more recommended); ${fix}.`)
  } else if (secret.length < GOOD_SECRET_LENGTH) {
    r.notice(name, 'warn', `${name} is shorter than ${GOOD_SECRET_LENGTH} characters: accepted, but a longer random value is harder to guess; ${fix}.`)
  }
}
