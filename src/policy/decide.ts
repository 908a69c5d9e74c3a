// The authorization decision: a pure function of what the session (or a bearer token) holds
// about the user, the configured requirements and the request (method, normalized path, host),
// so it is tested without HTTP. Denials carry plain words for the page and stable codes for logs.
//
// Requirements compose, each on top of the one before, all of them must hold: the global ones
// (required role, required groups), then the route's (routes.ts: the upstream the request goes
// to), then the longest per-path rule (matched on the normalized path, whatever the route).
import { checkRequiredRole, type RequiredRole } from './required-role.js'
import { findRule, isPublic, type AuthzRules } from './rules.js'
import { chooseRoute, type Route, type RouteTable } from './routes.js'

/**
 * What the decision reads of the configuration: its own small input, which the gateway's
 * configuration satisfies as it is (so policy depends on nothing outside itself).
 */
export interface PolicySettings {
  requiredRole: RequiredRole | undefined
  /** Any one of these group object ids admits the user (with a required role, both must hold). */
  requiredGroups: string[]
  rules: AuthzRules
  /** Upstreams besides the default one, each with its own roles and groups. */
  routes?: RouteTable | undefined
}

/** What the decision reads of a request; the forward-auth endpoint builds it from the original request. */
export interface RequestFacts {
  method: string
  /** The normalized path (rules.ts normalizePath). */
  path: string
  /** The Host as the gateway believes it (port and case as sent); only host routes read it. */
  host?: string | undefined
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

export type DenyReason = 'missing_role' | 'missing_group' | 'groups_unavailable' | 'route_role' | 'route_group' | 'path_role' | 'path_group'

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

/** The decision for a request, its route chosen here (see decideRouted for a caller that chose it already). */
export function decide (config: PolicySettings, subject: Subject, request?: RequestFacts): Decision {
  const route = request !== undefined && config.routes !== undefined ? chooseRoute(config.routes, request) : undefined
  return decideRouted(config, subject, request, route)
}

/**
 * Whether a request needs no sign-in: a `public` path of the rules file, on the default upstream
 * or a path route. Never on a host route: that host's site would otherwise inherit the public
 * paths written for the main one.
 */
export function isPublicRequest (config: PolicySettings, request: RequestFacts, route: Route | undefined): boolean {
  return route?.kind !== 'host' && isPublic(config.rules, request.method, request.path)
}

/** The decision for a request whose route (undefined: the default upstream) was chosen by chooseRoute. */
export function decideRouted (config: PolicySettings, subject: Subject, request: RequestFacts | undefined, route: Route | undefined): Decision {
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
  if (route !== undefined) {
    const d = decideRequirement(route.name, route.roles, route.groups, subject, 'route_role', 'route_group')
    if (!d.allowed) return d
  }
  if (request !== undefined && config.rules.rules.length > 0) {
    const rule = findRule(config.rules, request.method, request.path)
    if (rule !== undefined) return decideRequirement(rule.prefix, rule.roles, rule.groups, subject, 'path_role', 'path_group')
  }
  return ALLOWED
}

/** A route's or a path rule's requirement: any one of its roles and any one of its groups. */
function decideRequirement (where: string, roles: string[], groups: string[], subject: Subject, roleReason: DenyReason, groupReason: DenyReason): Decision {
  if (roles.length > 0 && !roles.some(r => subject.roles.includes(r) || subject.roleValues.includes(r))) {
    return { allowed: false, reason: roleReason, requirement: `requires ${describeRoles(roles)} for ${where}`, requiredRoles: roles, requiredGroups: [], rule: where }
  }
  if (groups.length > 0 && !groups.some(g => subject.groups.includes(g))) {
    return { allowed: false, reason: groupReason, requirement: `requires ${describeGroups(groups)} for ${where}`, requiredRoles: [], requiredGroups: groups, rule: where }
  }
  return ALLOWED
}
