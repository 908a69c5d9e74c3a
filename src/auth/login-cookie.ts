// Login transactions (PKCE verifier, nonce, where to return) between the redirect to the IdP
// and the callback. They live in a short-lived, sealed, HttpOnly cookie bound to the browser
// that started the sign-in, as openid-client's examples and oauth2-proxy's CSRF cookie do, and
// never in the session store: anonymous visitors cost the store nothing and cannot evict a
// signed-in session however many sign-ins they start.
import type { Sealer } from '../session/seal.js'
import type { LoginTransaction } from '../oidc/flow.js'
import { LOGIN_TRANSACTION_SECONDS } from '../oidc/flow.js'

/** More parallel sign-ins than this in one browser (tabs) and the oldest is dropped. */
export const MAX_PENDING = 5
/** A return path longer than this is not worth a cookie; the user lands on / instead. */
const MAX_RETURN_PATH = 1024
const AAD = 'login-transactions'

/** A transaction only when every field has the right type; anything else is no transaction. */
export function parseTransaction (value: unknown): LoginTransaction | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  const v = value as Record<string, unknown>
  if (typeof v.codeVerifier !== 'string' || v.codeVerifier.length < 43) return undefined
  if (typeof v.nonce !== 'string' || v.nonce === '') return undefined
  // A path, or an absolute URL on a configured site (checked again before it is followed).
  if (typeof v.returnTo !== 'string' || !(v.returnTo.startsWith('/') || /^https?:\/\//.test(v.returnTo))) return undefined
  if (typeof v.expiresAt !== 'number' || !Number.isFinite(v.expiresAt)) return undefined
  return { codeVerifier: v.codeVerifier, nonce: v.nonce, returnTo: v.returnTo, expiresAt: v.expiresAt }
}

/**
 * The browser's pending transactions by state, from its cookie. A Map, so a state such as
 * `__proto__` or `constructor` finds nothing; malformed entries are dropped, and so are those
 * expired before `keepExpiredSince` (the callback still sees a just-expired one, to say so).
 */
export function readTransactions (sealer: Sealer, cookie: string | undefined, keepExpiredSince: number): Map<string, LoginTransaction> {
  const out = new Map<string, LoginTransaction>()
  const list = sealer.openJson(cookie, AAD)
  if (!Array.isArray(list)) return out
  for (const item of list.slice(-MAX_PENDING)) {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string') continue
    const tx = parseTransaction(item[1])
    if (tx !== undefined && tx.expiresAt > keepExpiredSince) out.set(item[0], tx)
  }
  return out
}

/** Browsers keep cookies up to 4 KB; the oldest transactions go first to stay under it. */
const MAX_COOKIE_VALUE = 3600

/** The sealed cookie value for these transactions (the newest MAX_PENDING that fit). */
export function sealTransactions (sealer: Sealer, pending: Map<string, LoginTransaction>): string {
  let list = [...pending].slice(-MAX_PENDING)
  let sealed = sealer.sealJson(list, AAD)
  while (sealed.length > MAX_COOKIE_VALUE && list.length > 1) {
    list = list.slice(1)
    sealed = sealer.sealJson(list, AAD)
  }
  return sealed
}

export function boundedReturnPath (returnTo: string): string {
  return returnTo.length <= MAX_RETURN_PATH ? returnTo : '/'
}

export const LOGIN_COOKIE_MAX_AGE_MS = LOGIN_TRANSACTION_SECONDS * 1000
