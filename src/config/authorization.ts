// Who may use the gateway: the guide's required role, required groups, the tenants whose users
// may sign in, per-path rules, routes to other upstreams (each with its own rules), API bearer
// tokens. The decision itself is policy's; this reads its inputs (PolicySettings) and the rest.
import type { PolicySettings } from '../policy/decide.js'
import { TOKEN_KINDS, type TokenKind } from '../policy/required-role.js'
import { EMPTY_RULES, loadRulesFile, type AuthzRules } from '../policy/rules.js'
import { compileRoute, NO_ROUTES, parseRoutesVariable, routeTable, type Route, type RouteTable } from '../policy/routes.js'
import { issuerSegment, type IdentityProviderSettings } from './identity-provider.js'
import { EnvReader, GUID, type Section } from './readers.js'

export interface AuthorizationSettings extends PolicySettings {
  /** Tenants whose users may sign in; the issuer's own tenant for a single-tenant issuer. */
  allowedTenants: string[] | undefined
  authzRecheckSeconds: number
  bearerAuth: boolean
  forwardGroupsMaxBytes: number
  routes: RouteTable
}

export function parseAuthorization (env: NodeJS.ProcessEnv, idp: Pick<IdentityProviderSettings, 'issuer' | 'issuerTenantId' | 'multiTenant'>): Section<AuthorizationSettings> {
  const r = new EnvReader(env)
  // --- the guide's required role
  const tokenKind = r.oneOf<TokenKind>('OPENID_REQUIRED_ROLE_TOKEN_KIND', TOKEN_KINDS, 'id', `one of ${TOKEN_KINDS.join(', ')}`)
  const rolePathRaw = r.str('OPENID_REQUIRED_ROLE_PARAMETER_PATH') ?? 'roles'
  const rolePath = rolePathRaw.split('.')
  if (rolePath.some(p => p === '')) r.problem('OPENID_REQUIRED_ROLE_PARAMETER_PATH', `OPENID_REQUIRED_ROLE_PARAMETER_PATH must be a dot path such as roles or realm_access.roles (got "${rolePathRaw}").`)
  const roles = r.list('OPENID_REQUIRED_ROLE')
  const requiredRole = roles.length > 0 ? { roles, tokenKind, path: rolePath } : undefined

  // --- groups and tenants
  const requiredGroups = r.list('OPENID_REQUIRED_GROUPS')
  const allowedTenantsRaw = r.list('OPENID_ALLOWED_TENANTS').map(x => x.toLowerCase())
  for (const tid of allowedTenantsRaw) {
    if (!GUID.test(tid)) r.problem('OPENID_ALLOWED_TENANTS', `OPENID_ALLOWED_TENANTS must be a comma-separated list of tenant ids (GUIDs) (bad entry "${tid}").`)
  }
  if (idp.multiTenant && allowedTenantsRaw.length === 0 && idp.issuer !== '') {
    r.problem('OPENID_ALLOWED_TENANTS', `OPENID_ALLOWED_TENANTS is not set: the issuer "${issuerSegment(idp.issuer)}" admits every tenant, so list the tenant ids whose users may sign in.`)
  }
  let allowedTenants: string[] | undefined
  if (idp.multiTenant) allowedTenants = allowedTenantsRaw
  else if (idp.issuerTenantId !== undefined) allowedTenants = [...new Set([idp.issuerTenantId, ...allowedTenantsRaw])]
  else if (allowedTenantsRaw.length > 0) allowedTenants = allowedTenantsRaw

  // --- per-path rules, bearer tokens, the groups header
  const authzRecheckSeconds = r.int('AUTHZ_RECHECK_SECONDS', 900, 30, 24 * 3600)
  const rulesFile = r.str('AUTHZ_RULES_FILE')
  let rules: AuthzRules = EMPTY_RULES
  const fileRoutes: Route[] = []
  if (rulesFile !== undefined) {
    const loaded = loadRulesFile(rulesFile)
    if ('problem' in loaded) r.problem('AUTHZ_RULES_FILE', `AUTHZ_RULES_FILE: ${loaded.problem}`)
    else {
      rules = loaded.rules
      fileRoutes.push(...loaded.routes)
    }
  }

  // --- routes: the rules file's (which may carry roles and groups) and ROUTES (plain ones)
  const parsed = parseRoutesVariable(r.str('ROUTES') ?? '')
  for (const problem of parsed.problems) r.problem('ROUTES', `ROUTES ${problem}.`)
  const envRoutes: Route[] = []
  for (const spec of parsed.specs) {
    const compiled = compileRoute(spec)
    if ('problem' in compiled) r.problem('ROUTES', `ROUTES entry "${spec.match}=${spec.upstream}": ${compiled.problem}.`)
    else envRoutes.push(compiled.route)
  }
  let routes: RouteTable = NO_ROUTES
  const table = routeTable([...fileRoutes, ...envRoutes])
  if ('problem' in table) {
    const inFile = fileRoutes.length > 0 && envRoutes.length > 0 ? ' (between ROUTES and AUTHZ_RULES_FILE\'s routes)' : ''
    r.problem(envRoutes.length > 0 ? 'ROUTES' : 'AUTHZ_RULES_FILE', `${envRoutes.length > 0 ? 'ROUTES' : 'AUTHZ_RULES_FILE'}: ${table.problem}${inFile}.`)
  } else routes = table.table
  const bearerAuth = r.bool('BEARER_AUTH', false)
  const forwardGroupsMaxBytes = r.int('FORWARD_GROUPS_MAX_BYTES', 4096, 256, 65536)

  return r.section({ requiredRole, requiredGroups, allowedTenants, authzRecheckSeconds, rules, routes, bearerAuth, forwardGroupsMaxBytes })
}
