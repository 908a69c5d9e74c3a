// From a token's claims to who the user is (Entra's shapes: oid, tid, roles, groups).

export interface Identity {
  /** Entra object id when present (stable per user and tenant), else `sub`. */
  userId: string
  sub: string
  oid: string | undefined
  tenantId: string | undefined
  name: string | undefined
  /** `email`, else `preferred_username`, else `upn` (Entra often omits `email`). */
  email: string | undefined
  preferredUsername: string | undefined
  roles: string[]
  groups: string[]
}

export type Claims = Record<string, unknown>

const asString = (v: unknown): string | undefined => typeof v === 'string' && v !== '' ? v : undefined
const asStringList = (v: unknown): string[] => {
  if (typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string')
  return []
}

export function identityFromClaims (claims: Claims): Identity {
  const sub = asString(claims.sub) ?? ''
  const oid = asString(claims.oid)
  const preferredUsername = asString(claims.preferred_username)
  return {
    userId: oid ?? sub,
    sub,
    oid,
    tenantId: asString(claims.tid),
    name: asString(claims.name),
    email: asString(claims.email) ?? preferredUsername ?? asString(claims.upn),
    preferredUsername,
    roles: asStringList(claims.roles),
    groups: asStringList(claims.groups)
  }
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
