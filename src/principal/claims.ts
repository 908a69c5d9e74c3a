// From a token's claims to who the user is (Entra's shapes: oid, tid, roles, groups).

export interface Identity {
  /** Entra object id when present (stable per user and tenant), else `sub`. */
  userId: string
  sub: string
  oid: string | undefined
  tenantId: string | undefined
  /** OPENID_NAME_CLAIM, else `name`, else LibreChat's order (see identityFromClaims). */
  name: string | undefined
  /** OPENID_EMAIL_CLAIM, else `email`, else `preferred_username`, else `upn` (Entra often omits `email`). */
  email: string | undefined
  /** OPENID_USERNAME_CLAIM, else `preferred_username`, else `username`, else `email`. */
  preferredUsername: string | undefined
  roles: string[]
  groups: string[]
}

export type Claims = Record<string, unknown>

/** LibreChat's OPENID_USERNAME_CLAIM, OPENID_NAME_CLAIM and OPENID_EMAIL_CLAIM: which claim fills each. */
export interface ClaimNames {
  username?: string | undefined
  name?: string | undefined
  email?: string | undefined
}

const asString = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
const asStringList = (v: unknown): string[] => {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}
/** LibreChat's convertToUsername: a string as is, a list joined with `_`. */
const asUsername = (v: unknown): string | undefined => {
  if (Array.isArray(v)) return asString(v.filter((x): x is string => typeof x === 'string').join('_'))
  return asString(v)
}
/** A claim by name, never one of Object.prototype's. */
const claim = (claims: Claims, name: string): unknown => Object.hasOwn(claims, name) ? claims[name] : undefined

/**
 * Who the claims say the user is. The user name, name and email follow LibreChat's rules
 * (api/strategies/openidStrategy.js, packages/api getOpenIdEmail): a configured username or
 * name claim is used alone, as there; a configured email claim falls back to email,
 * preferred_username, upn when it is missing. Without a name claim LibreChat builds the name
 * from given_name and family_name (which Entra sends from UserInfo only); the ID token's
 * `name` comes first here, then LibreChat's order.
 */
export function identityFromClaims (claims: Claims, names: ClaimNames = {}): Identity {
  const sub = asString(claims.sub) ?? ''
  const oid = asString(claims.oid)
  const email = asString(claims.email)
  const preferredUsername = names.username !== undefined
    ? asUsername(claim(claims, names.username))
    : asUsername(claims.preferred_username) ?? asUsername(claims.username) ?? email
  return {
    userId: oid ?? sub,
    sub,
    oid,
    tenantId: asString(claims.tid),
    name: names.name !== undefined ? asString(claim(claims, names.name)) : defaultName(claims),
    email: (names.email !== undefined ? asString(claim(claims, names.email)) : undefined) ?? email ?? asString(claims.preferred_username) ?? asString(claims.upn),
    preferredUsername,
    roles: asStringList(claims.roles),
    groups: asStringList(claims.groups)
  }
}

function defaultName (claims: Claims): string | undefined {
  const given = asString(claims.given_name)
  const family = asString(claims.family_name)
  return asString(claims.name) ??
    (given !== undefined && family !== undefined ? `${given} ${family}` : given ?? family) ??
    asString(claims.username) ?? asString(claims.email)
}

/** Reads a dot path (`realm_access.roles`) out of claims; a string counts as a one-element list. */
export function claimValues (claims: Claims, path: string[]): string[] {
  let node: unknown = claims
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return []
    node = (node as Record<string, unknown>)[key]
  }
  return asStringList(node)
}

/** Entra leaves `groups` out above 200 and says so with `_claim_names.groups` (or `hasgroups`). */
export function hasGroupOverage (claims: Claims): boolean {
  const names = claims._claim_names
  if (names !== null && typeof names === 'object' && 'groups' in names) return true
  return claims.hasgroups === true || claims.hasgroups === 'true'
}
