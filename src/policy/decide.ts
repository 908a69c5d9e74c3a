// The authorization decision: a pure function of what the session (or a bearer token) holds
// about the user, the configured requirements and the request's normalized path, so it is
// tested without HTTP. Denials carry plain words for the page and stable codes for logs.
import { checkRequiredRole, type RequiredRole } from './required-role.js'
import { findRule, type AuthzRules, type PathRule } from './rules.js'

/**
 * What the decision reads of the configuration: its own small input, which the gateway's
 * configuration satisfies as it is (so policy depends on nothing outside itself).
 */
export interface PolicySettings {
  requiredRole: RequiredRole | undefined
  /** Any one of these group object ids admits the user (with a required role, both must hold). */
  requiredGroups: string[]
  rules: AuthzRules
}

export interface Subject {
  /** Values at OPENID_REQUIRED_ROLE_PARAMETER_PATH in the configured token kind. */
  roleValues: readonly string[]
  /** The `roles` claim (app roles). */
  roles: readonly string[]
  /** Resolved group ids (from the token, or from Graph on overage). */
  groups: readonly string[]
  /** Set when membership could not be checked: the decision is then closed. */
  authzError?: string | undefined
}

export type DenyReason = 'missing_role' | 'missing_group' | 'groups_unavailable' | 'path_role' | 'path_group'

export interface Allowed { allowed: true }
export interface Denied {
  allowed: false
  reason: DenyReason
  /** Plain words: "requires the role ChatUser". */
  requirement: string
  requiredRoles: string[]
  requiredGroups: string[]
  /** The rule that applied, for the log. */
  rule?: string
}
export type Decision = Allowed | Denied

const ALLOWED: Allowed = { allowed: true }

export function describeRoles (roles: readonly string[]): string {
  return roles.length === 1 ? `the role ${roles[0] as string}` : `one of the roles ${roles.join(', ')}`
}

export function describeGroups (groups: readonly string[]): string {
  return groups.length === 1 ? 'membership in a specific group' : `membership in one of ${groups.length} groups`
}

export function decide (config: PolicySettings, subject: Subject, request?: { method: string, path: string }): Decision {
  // Overage groups that Graph could not give us: closed, never "zero groups" and a pass.
  if (subject.authzError !== undefined) {
    return { allowed: false, reason: 'groups_unavailable', requirement: 'requires group membership, which could not be checked right now', requiredRoles: [], requiredGroups: config.requiredGroups }
  }
  const role = checkRequiredRole(config.requiredRole, subject.roleValues)
  if (!role.allowed) {
    return { allowed: false, reason: 'missing_role', requirement: `requires ${describeRoles(role.required)}`, requiredRoles: role.required, requiredGroups: [] }
  }
  if (config.requiredGroups.length > 0 && !config.requiredGroups.some(g => subject.groups.includes(g))) {
    return { allowed: false, reason: 'missing_group', requirement: `requires ${describeGroups(config.requiredGroups)}`, requiredRoles: [], requiredGroups: config.requiredGroups }
  }
  if (request !== undefined && config.rules.rules.length > 0) {
    const rule = findRule(config.rules, request.method, request.path)
    if (rule !== undefined) return decideRule(rule, subject)
  }
  return ALLOWED
}

function decideRule (rule: PathRule, subject: Subject): Decision {
  const where = rule.prefix
  if (rule.roles.length > 0 && !rule.roles.some(r => subject.roles.includes(r) || subject.roleValues.includes(r))) {
    return { allowed: false, reason: 'path_role', requirement: `requires ${describeRoles(rule.roles)} for ${where}`, requiredRoles: rule.roles, requiredGroups: [], rule: where }
  }
  if (rule.groups.length > 0 && !rule.groups.some(g => subject.groups.includes(g))) {
    return { allowed: false, reason: 'path_group', requirement: `requires ${describeGroups(rule.groups)} for ${where}`, requiredRoles: [], requiredGroups: rule.groups, rule: where }
  }
  return ALLOWED
}
