// The session: the secret its cookie and sealed tokens hang on, where it is stored, its
// cookies (and the sites they reach) and how long it lasts.
import { isIP } from 'node:net'
import { isHostName, type RouteTable } from '../policy/routes.js'
import { EnvReader, type Section } from './readers.js'
import type { IdentityProviderSettings } from './identity-provider.js'
import { readRedis, type RedisSettings } from './redis.js'

export type SessionStoreKind = 'memory' | 'redis'

export interface SessionSettings {
  /**
   * OPENID_SESSION_SECRET, then OPENID_SESSION_SECRET_PREVIOUS: the first signs and seals,
   * every one verifies and opens (rotation signs nobody out).
   */
  sessionSecrets: string[]
  sessionStore: SessionStoreKind
  /** Where the Redis store is (one server, Sentinel or Cluster); undefined for the memory store. */
  redis: RedisSettings | undefined
  sessionExpirySeconds: number
  /** With OPENID_REUSE_TOKENS, how long refreshing may keep a session alive in all. */
  sessionMaxAgeSeconds: number
  memoryStoreMaxSessions: number
  /**
   * Cookie name, Secure when DOMAIN_SERVER is https and then prefixed: `__Host-` (host-only), or
   * `__Secure-` with COOKIE_DOMAIN (a `__Host-` cookie cannot carry Domain=).
   */
  cookieName: string
  /** The short-lived sealed cookie holding this browser's pending sign-ins. */
  loginCookieName: string
  secureCookies: boolean
  /**
   * COOKIE_DOMAIN: both cookies carry `Domain=` so that every host under it shares the sign-in;
   * undefined: host-only cookies for DOMAIN_SERVER's host.
   */
  cookieDomain: string | undefined
  /**
   * With COOKIE_DOMAIN, the host-only cookies used without it (`__Host-entra-gw` over https, the
   * same names over http). The old session cookie is still read, so setting COOKIE_DOMAIN signs
   * nobody out; both are removed at the next sign-in or sign-out and never reach an upstream.
   */
  hostOnlyCookies: { session: string, login: string } | undefined
  /**
   * The sites a browser signs in on, origin by host (lower case): DOMAIN_SERVER's, and each host
   * route COOKIE_DOMAIN covers, with DOMAIN_SERVER's scheme and port. Sign-in returns only to
   * these origins and same-origin checks accept them; any other host route is for bearer tokens.
   */
  siteOrigins: ReadonlyMap<string, string>
}

export function parseSession (env: NodeJS.ProcessEnv, idp: Pick<IdentityProviderSettings, 'publicOrigin'>, authz: { routes: RouteTable }): Section<SessionSettings> {
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
  const redis = readRedis(r, sessionStore === 'redis')

  const sessionExpirySeconds = r.int('SESSION_EXPIRY_SECONDS', 12 * 3600, 60, 90 * 24 * 3600)
  const memoryStoreMaxSessions = r.int('SESSION_MEMORY_MAX', 100_000, 100, 10_000_000)
  const sessionMaxAgeSeconds = r.int('SESSION_MAX_AGE_SECONDS', 7 * 24 * 3600, 60, 90 * 24 * 3600)

  const secureCookies = idp.publicOrigin.startsWith('https:')
  const cookieDomain = readCookieDomain(r, idp.publicOrigin)
  const siteOrigins = sitesOf(r, idp.publicOrigin, cookieDomain, authz.routes)
  const prefix = !secureCookies ? '' : cookieDomain !== undefined ? '__Secure-' : '__Host-'
  const hostOnlyPrefix = secureCookies ? '__Host-' : ''
  return r.section({
    sessionSecrets,
    sessionStore,
    redis,
    sessionExpirySeconds,
    sessionMaxAgeSeconds,
    memoryStoreMaxSessions,
    cookieName: `${prefix}entra-gw`,
    loginCookieName: `${prefix}entra-gw-login`,
    secureCookies,
    cookieDomain,
    hostOnlyCookies: cookieDomain === undefined ? undefined : { session: `${hostOnlyPrefix}entra-gw`, login: `${hostOnlyPrefix}entra-gw-login` },
    siteOrigins
  })
}

/** RFC 6265 domain-match: the host is the domain or ends with "." and the domain. */
export function domainMatches (host: string, domain: string): boolean {
  return host === domain || (host.endsWith(domain) && host.charCodeAt(host.length - domain.length - 1) === 46)
}

/** The domain a host's siblings share, for messages: chat.example.com → example.com. */
function parentOf (host: string): string {
  const labels = host.split('.')
  return labels.length > 2 ? labels.slice(1).join('.') : host
}

function readCookieDomain (r: EnvReader, publicOrigin: string): string | undefined {
  const raw = r.str('COOKIE_DOMAIN')
  if (raw === undefined) return undefined
  // oauth2-proxy's spelling with a leading dot is taken: browsers ignore the dot (RFC 6265 5.2.3).
  const domain = raw.toLowerCase().replace(/^\./, '')
  if (!isHostName(domain) || isIP(domain) !== 0) {
    r.problem('COOKIE_DOMAIN', `COOKIE_DOMAIN must be a domain name such as example.com, without scheme, port or path (got "${raw}").`)
    return undefined
  }
  // Browsers refuse a cookie for a top-level name (com, localhost) from any host below it.
  if (!domain.includes('.')) {
    r.problem('COOKIE_DOMAIN', `COOKIE_DOMAIN=${domain} is a top-level name, for which browsers refuse cookies; set it to the domain your hosts share, such as example.com.`)
    return undefined
  }
  if (publicOrigin === '') return domain
  const host = new URL(publicOrigin).hostname
  if (!domainMatches(host, domain)) {
    r.problem('COOKIE_DOMAIN', `COOKIE_DOMAIN=${domain} does not cover DOMAIN_SERVER's host ${host}, so browsers would refuse the session cookie there; set it to ${parentOf(host)} or another domain ${host} ends with.`)
    return undefined
  }
  return domain
}

function sitesOf (r: EnvReader, publicOrigin: string, cookieDomain: string | undefined, routes: RouteTable): Map<string, string> {
  const sites = new Map<string, string>()
  if (publicOrigin === '') return sites
  const main = new URL(publicOrigin)
  sites.set(main.hostname, publicOrigin)
  const port = main.port === '' ? '' : `:${main.port}`
  const outside: string[] = []
  for (const host of routes.hosts.keys()) {
    if (host === main.hostname) continue
    if (cookieDomain !== undefined && domainMatches(host, cookieDomain)) sites.set(host, `${main.protocol}//${host}${port}`)
    else outside.push(host)
  }
  if (outside.length > 0) {
    const which = `The host route${outside.length === 1 ? '' : 's'} ${outside.join(', ')}`
    r.notice('COOKIE_DOMAIN', 'warn', cookieDomain === undefined
      ? `${which} get${outside.length === 1 ? 's' : ''} no browser sign-in: the session cookie belongs to ${main.hostname} alone, so only API bearer tokens (BEARER_AUTH=true) are accepted there; set COOKIE_DOMAIN to a domain the hosts share (such as ${parentOf(main.hostname)}) to share the sign-in.`
      : `${which} ${outside.length === 1 ? 'is' : 'are'} not under COOKIE_DOMAIN=${cookieDomain}: browsers cannot sign in there, so only API bearer tokens (BEARER_AUTH=true) are accepted.`)
  }
  return sites
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
