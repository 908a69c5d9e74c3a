// Logout started at the IdP: which issuer may name a session, how the gateway finds the sessions
// a logout names (links by `sid` and `sub`), and the checks of a back-channel logout token
// (OpenID Connect Back-Channel Logout 1.0, section 2.6). Pure functions over their inputs;
// src/auth/idp-logout.ts wires them to the routes.
import { createHash } from 'node:crypto'
import { jwtVerify, errors as joseErrors, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { issuerForTenant } from './issuer.js'

/** Where the IdP sends logouts (register them at the IdP; the doctor prints them). */
export const FRONT_CHANNEL_LOGOUT_PATH = '/oauth2/front_channel_logout'
export const BACK_CHANNEL_LOGOUT_PATH = '/oauth2/back_channel_logout'
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'
/** A logout token issued longer ago than this is refused; its jti is remembered this long (plus the clock tolerance). */
export const MAX_LOGOUT_TOKEN_AGE_SECONDS = 600
/** Longer values are no sid or sub an IdP issues: refused before any work. */
export const MAX_LOGOUT_VALUE_LENGTH = 512

/** The store key linking sessions to a `sid` or a `sub`: hashed, so keys have one length and no caller's bytes. */
export function linkKey (kind: 'sid' | 'sub', value: string): string {
  return `${kind}:${createHash('sha256').update(value).digest('base64url')}`
}

/** The replay key of a logout token's jti at its issuer. */
export function jtiKey (iss: string, jti: string): string {
  return `logout-jti:${createHash('sha256').update(`${iss}\0${jti}`).digest('base64url')}`
}

/**
 * Whether `iss` may name sessions of this gateway: the discovered issuer itself or, when its
 * metadata carries the `{tenantid}` template, the template filled with an allowed tenant.
 */
export function acceptableIssuer (metadataIssuer: string, iss: string, allowedTenants: readonly string[] | undefined): boolean {
  if (iss === metadataIssuer) return true
  const at = metadataIssuer.indexOf('{tenantid}')
  if (at === -1) return false
  const prefix = metadataIssuer.slice(0, at)
  const suffix = metadataIssuer.slice(at + '{tenantid}'.length)
  if (!iss.startsWith(prefix) || !iss.endsWith(suffix) || iss.length <= prefix.length + suffix.length) return false
  const tid = iss.slice(prefix.length, iss.length - suffix.length)
  if (issuerForTenant(metadataIssuer, tid) !== iss) return false
  return allowedTenants === undefined || allowedTenants.includes(tid.toLowerCase())
}

export class LogoutTokenError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'LogoutTokenError'
  }
}

export interface LogoutToken { iss: string, jti: string, sid: string | undefined, sub: string | undefined }

/**
 * Verifies a logout token as an ID token is verified (signature from the IdP's keys, RS256,
 * iss, aud, iat, exp when present) plus what makes it a logout token: the back-channel logout
 * event, `sid` or `sub`, no `nonce`. The jti's novelty is the caller's (it needs the store).
 */
export async function verifyLogoutToken (
  token: string,
  opts: { keys: JWTVerifyGetKey, metadataIssuer: string, clientId: string, allowedTenants: readonly string[] | undefined, clockToleranceSeconds: number, now?: number }
): Promise<LogoutToken> {
  let payload: JWTPayload
  try {
    ({ payload } = await jwtVerify(token, opts.keys, {
      audience: opts.clientId,
      algorithms: ['RS256'],
      clockTolerance: opts.clockToleranceSeconds,
      maxTokenAge: MAX_LOGOUT_TOKEN_AGE_SECONDS,
      requiredClaims: ['iss', 'iat', 'jti'],
      ...(opts.now !== undefined ? { currentDate: new Date(opts.now) } : {})
    }))
  } catch (err) {
    if (err instanceof joseErrors.JWTClaimValidationFailed) throw new LogoutTokenError(`the logout token's ${err.claim} claim is not acceptable`)
    if (err instanceof joseErrors.JWTExpired) throw new LogoutTokenError('the logout token has expired')
    throw new LogoutTokenError('the logout token signature or format is not valid')
  }
  const iss = payload.iss as string
  // With the {tenantid} template, the issuer must be the one of the token's own tenant.
  const tid = typeof payload.tid === 'string' ? payload.tid : undefined
  const own = opts.metadataIssuer.includes('{tenantid}') ? issuerForTenant(opts.metadataIssuer, tid) : opts.metadataIssuer
  if (own !== iss || !acceptableIssuer(opts.metadataIssuer, iss, opts.allowedTenants)) throw new LogoutTokenError('the logout token\'s iss claim is not acceptable')
  const events = payload.events
  const event = events !== null && typeof events === 'object' && !Array.isArray(events) ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT] : undefined
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new LogoutTokenError('the token carries no back-channel logout event')
  if (payload.nonce !== undefined) throw new LogoutTokenError('a logout token must not carry a nonce')
  const text = (v: unknown): string | undefined => typeof v === 'string' && v !== '' && v.length <= MAX_LOGOUT_VALUE_LENGTH ? v : undefined
  const sid = text(payload.sid)
  const sub = text(payload.sub)
  if (sid === undefined && sub === undefined) throw new LogoutTokenError('the logout token names neither a sid nor a sub')
  const jti = text(payload.jti)
  if (jti === undefined) throw new LogoutTokenError('the logout token\'s jti claim is not acceptable')
  return { iss, jti, sid, sub }
}
