/**
 * The Entra-shaped claims of a user: oid, tid, ver, roles, groups (and overage through
 * `extraClaims`), login_hint, a pairwise `sub`; and which of them each scope releases, in the ID
 * token, the app's access token and userinfo.
 */
import { createHash } from 'node:crypto'
import type { OidcToken } from './oidc.js'
import type { IdpUser } from './types.js'

/**
 * Which claims each scope releases. oidc-provider only emits configured claims, so every claim
 * the gateway may read must be listed; Entra's directory claims ride on `openid` because Entra
 * sends them regardless of scope. `_claim_names`/`_claim_sources` need no entry: oidc-provider
 * passes them through for any released claim they name (e.g. `groups`).
 */
const ENTRA_OPENID_CLAIMS = [
  'sub', 'oid', 'tid', 'ver', 'roles', 'groups', 'wids', 'hasgroups', 'idp', 'upn',
  'unique_name', 'login_hint', 'acct', 'xms_pdl', 'xms_tpl',
]
const PROFILE_CLAIMS = ['name', 'preferred_username', 'given_name', 'family_name']
const EMAIL_CLAIMS = ['email']

/** The `claims` option of oidc-provider, for these users. */
export function claimsConfig (users: Iterable<IdpUser>): Record<string, string[]> {
  const known = new Set([...ENTRA_OPENID_CLAIMS, ...PROFILE_CLAIMS, ...EMAIL_CLAIMS])
  const extra = new Set<string>()
  for (const user of users) {
    for (const key of Object.keys(user.extraClaims ?? {})) {
      // Claims oidc-provider sets itself must not be declared as user claims.
      if (!known.has(key) && !key.startsWith('_claim_') && !RESERVED_JWT_CLAIMS.has(key)) extra.add(key)
    }
  }
  return {
    openid: [...ENTRA_OPENID_CLAIMS, ...extra],
    profile: PROFILE_CLAIMS,
    email: EMAIL_CLAIMS,
  }
}
const RESERVED_JWT_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 'auth_time', 'acr', 'amr', 'sid'])

/** All claims of a user, before scope filtering. `sub` is the accountId (oid): oidc-provider makes it pairwise. */
export function userClaims (user: IdpUser, idpTenantId: string): Record<string, unknown> {
  // A user of another tenant (the organizations realm) carries their own.
  const tenantId = user.tenantId ?? idpTenantId
  const claims: Record<string, unknown> = {
    sub: user.oid,
    oid: user.oid,
    tid: tenantId,
    ver: '2.0',
    name: user.name,
    preferred_username: user.preferredUsername,
    email: user.email,
    // Entra omits `roles` when none are assigned, rather than sending [].
    roles: user.roles?.length ? [...user.roles] : undefined,
    groups: user.groups ? [...user.groups] : undefined,
    // Entra's optional ID-token claim: an opaque value meant for `logout_hint`.
    login_hint: loginHint(user, tenantId),
    ...structuredClone(user.extraClaims ?? {}),
  }
  for (const [key, value] of Object.entries(claims)) if (value === undefined) delete claims[key]
  return claims
}

/** Opaque and stable per user, like Entra's (whose content is undocumented). */
function loginHint (user: IdpUser, tenantId: string): string {
  return 'O.' + Buffer.from(JSON.stringify({ oid: user.oid, tid: tenantId, upn: user.preferredUsername })).toString('base64url')
}

/** Entra's `sub` is per application; a stable hash of (client, oid) gives the same property. */
export function pairwiseSub (accountId: string, clientId: string): string {
  return createHash('sha256').update(`${clientId}\0${accountId}`).digest('base64url')
}

/**
 * Claims added to the app's own (JWT) access tokens: Entra's, so a gateway configured to read
 * roles from the access token works.
 */
export function appAccessTokenClaims (user: IdpUser, tenantId: string, token: OidcToken): Record<string, unknown> {
  const claims = userClaims(user, tenantId)
  delete claims.sub // the JWT format sets (pairwise) sub itself
  delete claims.login_hint // ID tokens only, as in Entra
  // JWT access tokens are not stored by oidc-provider, so revocation is only visible
  // through their grant. Its id rides in `aio`, Entra's opaque "ignore me" claim.
  return { ...claims, scp: token.scope ?? '', azp: token.clientId, aio: token.grantId }
}

const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ENTRA_OPENID_CLAIMS,
  profile: PROFILE_CLAIMS,
  email: EMAIL_CLAIMS,
}

/**
 * The userinfo answer for an access token of `clientId` with `scopes`: the claims those scopes
 * release, plus the claims no scope lists (overage's `_claim_*`, other `extraClaims`).
 */
export function userinfoClaims (user: IdpUser, tenantId: string, clientId: string, scopes: string[]): Record<string, unknown> {
  const all = userClaims(user, tenantId)
  all.sub = pairwiseSub(user.oid, clientId)
  const allowed = new Set(scopes.flatMap((s) => SCOPE_CLAIMS[s] ?? []))
  const out: Record<string, unknown> = {}
  delete all.login_hint // an ID-token claim only
  for (const [key, value] of Object.entries(all)) {
    if (allowed.has(key) || key.startsWith('_claim_') || !isKnownClaim(key)) out[key] = value
  }
  return out
}

function isKnownClaim (name: string): boolean {
  return ENTRA_OPENID_CLAIMS.includes(name) || PROFILE_CLAIMS.includes(name) || EMAIL_CLAIMS.includes(name)
}
