// The principal: who a request is, as every consumer sees it (the gate, userinfo, the token
// and directory routes, the proxy edge). One shape whether it came from a session or an API
// bearer token, kept compact because the memory store holds one per signed-in user.
import { claimValues, hasGroupOverage, identityFromClaims, type ClaimNames, type Claims, type Identity } from './claims.js'

export interface Principal extends Identity {
  /** The values the required-role rule reads (its claim path in its token). */
  roleValues: string[]
  /** Groups came from Graph because the token carried the overage marker instead. */
  groupsOverage: boolean
  /** Why authorization could not be established (Graph down on overage); policy refuses. */
  authzError?: string
  /** Epoch ms. */
  signedInAt: number
  /** Epoch ms when roles and groups were last read from the IdP (and Graph). */
  checkedAt: number
  /** The IdP session (`sid` claim of the ID token), which the IdP's logout names; a session's only. */
  sid: string | undefined
}

/** How the required-role rule reads its values: which token, and the claim path in it. */
export interface RoleSource {
  tokenKind: 'id' | 'access' | 'userinfo'
  path: string[]
}

/** What resolving needs beyond the claims: each only called when the claims require it. */
export interface ResolveSources {
  /** Every group id of the user, from Graph (the token carried the overage marker). */
  overageGroups: () => Promise<string[]>
  /** The claims of the sign-in access token (an opaque token has none). */
  accessTokenClaims: () => Claims
  /** The claims the UserInfo endpoint returns for the sign-in access token. */
  userInfoClaims: () => Promise<Claims>
  /** Failures that must not become `authzError` but end the sign-in or session (a revoked session). */
  fatal?: (err: unknown) => boolean
}

/**
 * The principal for a signed-in user, from the ID token's claims: identity, groups (from
 * Graph on overage; if Graph fails the groups are empty and `authzError` says why, so policy
 * refuses rather than guessing), and the values the required-role rule reads. `names` are
 * the configured user name, name and email claims.
 */
export async function resolvePrincipal (claims: Claims, role: RoleSource | undefined, sources: ResolveSources, signedInAt: number, pool?: StringPool, now = Date.now(), names?: ClaimNames): Promise<Principal> {
  const identity = identityFromClaims(claims, names)
  let groupsOverage = false
  let authzError: string | undefined
  if (hasGroupOverage(claims)) {
    groupsOverage = true
    try {
      identity.groups = await sources.overageGroups()
    } catch (err) {
      if (sources.fatal?.(err) === true) throw err
      identity.groups = []
      authzError = (err as Error).message
    }
  }
  let roleValues: string[]
  if (role === undefined || role.tokenKind === 'id') {
    const path = role?.path ?? ['roles']
    // The guide's way of requiring a group (PARAMETER_PATH=groups) must see overage groups too.
    roleValues = path.length === 1 && path[0] === 'groups' ? identity.groups : claimValues(claims, path)
  } else if (role.tokenKind === 'access') {
    roleValues = claimValues(sources.accessTokenClaims(), role.path)
  } else {
    roleValues = claimValues(await sources.userInfoClaims(), role.path)
  }
  return compact(identity, roleValues, groupsOverage, authzError, signedInAt, now, pool, typeof claims.sid === 'string' && claims.sid !== '' ? claims.sid : undefined)
}

/**
 * Shares equal strings between principals: a tenant id, a role name, a group id repeats across
 * every user who has it, and each principal parsed from a token would otherwise hold its own
 * copy. Bounded: when full it starts over (strings already shared stay shared).
 */
export class StringPool {
  readonly #strings = new Map<string, string>()
  readonly #max: number
  constructor (max = 50_000) { this.#max = max }
  share (s: string): string {
    const kept = this.#strings.get(s)
    if (kept !== undefined) return kept
    if (this.#strings.size >= this.#max) this.#strings.clear()
    this.#strings.set(s, s)
    return s
  }

  list (l: string[]): string[] { return l.map(s => this.share(s)) }
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((v, i) => v === b[i])

/**
 * One object literal in one property order (V8 keeps such objects small and alike), with equal
 * values shared: `preferredUsername` is often the email and the role values often the roles,
 * and each copy costs the memory store per signed-in user.
 */
function compact (identity: Identity, roleValues: string[], groupsOverage: boolean, authzError: string | undefined, signedInAt: number, checkedAt: number, pool?: StringPool, sid?: string): Principal {
  const roles = pool?.list(identity.roles) ?? identity.roles
  const groups = pool?.list(identity.groups) ?? identity.groups
  const p: Principal = {
    userId: identity.userId === identity.oid ? identity.oid : identity.userId,
    sub: identity.sub,
    oid: identity.oid,
    tenantId: identity.tenantId !== undefined && pool !== undefined ? pool.share(identity.tenantId) : identity.tenantId,
    name: identity.name,
    email: identity.email,
    preferredUsername: identity.preferredUsername !== undefined && identity.preferredUsername === identity.email ? identity.email : identity.preferredUsername,
    roles,
    groups,
    roleValues: sameList(roleValues, roles) ? roles : sameList(roleValues, groups) ? groups : (pool?.list(roleValues) ?? roleValues),
    groupsOverage,
    signedInAt,
    checkedAt,
    sid
  }
  if (authzError !== undefined) p.authzError = authzError
  return p
}

/**
 * The principal for an API bearer token: read from the access token's own claims. Its group
 * overage cannot be resolved (there is no refresh token to ask Graph with), so it is refused.
 */
export function bearerPrincipal (claims: Claims, rolePath: string[] | undefined, pool?: StringPool, now = Date.now(), names?: ClaimNames): Principal {
  const identity = identityFromClaims(claims, names)
  const authzError = hasGroupOverage(claims) ? 'group overage in a bearer token cannot be resolved' : undefined
  return compact(identity, claimValues(claims, rolePath ?? ['roles']), false, authzError, now, now, pool)
}

/** How a person is named to themselves on a refusal page. */
export function displayName (p: Identity): string {
  return p.email ?? p.preferredUsername ?? p.name ?? p.userId
}
