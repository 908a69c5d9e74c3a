// The guide's OPENID_REQUIRED_ROLE rule as LibreChat applies it: any one listed value admits,
// matching is exact. A pure function of the values found at the configured claim path.

/** The token whose claims hold the required role's values. */
export type TokenKind = 'id' | 'access' | 'userinfo'
export const TOKEN_KINDS: readonly TokenKind[] = ['id', 'access', 'userinfo']

export interface RequiredRole {
  /** Any one of these admits the user (LibreChat splits OPENID_REQUIRED_ROLE on commas). */
  roles: string[]
  tokenKind: TokenKind
  /** Dot path into the chosen token's claims, already split: `realm_access.roles` → ['realm_access', 'roles']. */
  path: string[]
}

export interface RoleDecision {
  allowed: boolean
  required: string[]
}

export function checkRequiredRole (rule: RequiredRole | undefined, values: readonly string[]): RoleDecision {
  if (rule === undefined) return { allowed: true, required: [] }
  return { allowed: rule.roles.some(r => values.includes(r)), required: rule.roles }
}
