// The authorization decision for a signed-in user: a pure function of what the session holds
// about them and of the configured rules, so it is tested without HTTP.
import type { GatewayConfig } from '../config.js'
import { checkRequiredRole } from './required-role.js'

export interface Allowed { allowed: true }
export interface Denied {
  allowed: false
  /** Stable code for logs and JSON. */
  reason: 'missing_role'
  /** Plain words: what is required. */
  requirement: string
  requiredRoles: string[]
}
export type Decision = Allowed | Denied

const ALLOWED: Allowed = { allowed: true }

export function describeRoles (roles: readonly string[]): string {
  return roles.length === 1 ? `the role ${roles[0]}` : `one of the roles ${roles.join(', ')}`
}

export function decide (config: Pick<GatewayConfig, 'requiredRole'>, user: { roleValues: readonly string[] }): Decision {
  const role = checkRequiredRole(config.requiredRole, user.roleValues)
  if (!role.allowed) {
    return { allowed: false, reason: 'missing_role', requirement: `requires ${describeRoles(role.required)}`, requiredRoles: role.required }
  }
  return ALLOWED
}
