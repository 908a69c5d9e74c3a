// The guide's OPENID_REQUIRED_ROLE rule as LibreChat applies it: any one listed value admits,
// matching is exact. A pure function of the values found at the configured claim path.
import type { RequiredRole } from '../config.js'

export interface RoleDecision {
  allowed: boolean
  required: string[]
}

export function checkRequiredRole (rule: RequiredRole | undefined, values: readonly string[]): RoleDecision {
  if (rule === undefined) return { allowed: true, required: [] }
  return { allowed: rule.roles.some(r => values.includes(r)), required: rule.roles }
}
