// Who may use the gateway: the guide's required role, required groups, the tenants whose users
// may sign in, per-path rules, routes to other upstreams (each with its own rules), API bearer
// tokens. The decision itself is policy's; this reads its inputs (PolicySettings) and the rest.
import type { PolicySettings } from '../policy/decide.js'
import { TOKEN_KINDS, type TokenKind } from '../policy/required-role.js'
import { EMPTY_RULES, isPublic, loadRulesFile, normalizePath, type AuthzRules } from '../policy/rules.js'
import { compileRoute, NO_ROUTES, parseRoutesVariable, routeTable, type Route, type RouteTable } from '../policy/routes.js'
import { issuerSegment, SIGNED_OUT_PATH, type IdentityProviderSettings } from './identity-provider.js'
import { EnvReader, GUID, type Section } from './readers.js'
import type { TokenSettings } from './tokens.js'

export interface AuthorizationSettings extends PolicySettings {
  /** Tenants whose users may sign in; the issuer's own tenant for a single-tenant issuer. */
  allowedTenants: string[] | undefined
  authzRecheckSeconds: number
  bearerAuth: boolean
  forwardGroupsMaxBytes: number
  routes: RouteTable
}

export const DEFAULT_AUTHZ_RECHECK_SECONDS = 900
const MIN_AUTHZ_RECHECK_SECONDS = 30
const MAX_AUTHZ_RECHECK_SECONDS = 24 * 3600

export function parseAuthorization (
  env: NodeJS.ProcessEnv,
  idp: Pick<IdentityProviderSettings, 'issuer' | 'issuerTenantId' | 'multiTenant' | 'publicOrigin' | 'postLogoutRedirectUri'>,
  tokens: Pick<TokenSettings, 'reuseTokens'>
): Section<AuthorizationSettings> {
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
  const authzRecheckSeconds = recheckSeconds(r, tokens.reuseTokens)
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
  signsBackIn(r, idp, rules)

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

/**
 * How long the tokens of a sign-in are used before the gateway refreshes them and re-reads
 * roles and groups. LibreChat's OPENID_REUSE_MAX_SESSION_AGE_MS (with OPENID_REUSE_TOKENS) is
 * that same bound there ("reuses a cached OpenID session token before forcing an IdP
 * refresh", 15 minutes by default, as AUTHZ_RECHECK_SECONDS here), so it sets it when
 * AUTHZ_RECHECK_SECONDS does not. Its other use there, keeping LibreChat's OpenID session
 * cookie at least that long, has no counterpart: sessions last SESSION_EXPIRY_SECONDS.
 */
function recheckSeconds (r: EnvReader, reuseTokens: boolean): number {
  const own = r.str('AUTHZ_RECHECK_SECONDS')
  const seconds = r.int('AUTHZ_RECHECK_SECONDS', DEFAULT_AUTHZ_RECHECK_SECONDS, MIN_AUTHZ_RECHECK_SECONDS, MAX_AUTHZ_RECHECK_SECONDS)
  const reuseMs = r.milliseconds('OPENID_REUSE_MAX_SESSION_AGE_MS')
  if (reuseMs === undefined) return seconds
  const name = 'OPENID_REUSE_MAX_SESSION_AGE_MS'
  if (!reuseTokens) {
    r.notice(name, 'info', `${name} is not used: as in LibreChat it applies only with OPENID_REUSE_TOKENS=true; the gateway re-reads tokens every AUTHZ_RECHECK_SECONDS (${seconds} s).`)
    return seconds
  }
  if (own !== undefined) {
    r.notice(name, 'info', `${name} is not used: AUTHZ_RECHECK_SECONDS (${seconds} s) is set and says how long tokens are used before they are refreshed; unset it to follow ${name}.`)
    return seconds
  }
  const fromReuse = Math.ceil(reuseMs / 1000)
  if (fromReuse < MIN_AUTHZ_RECHECK_SECONDS || fromReuse > MAX_AUTHZ_RECHECK_SECONDS) {
    r.problem(name, `${name} must be from ${MIN_AUTHZ_RECHECK_SECONDS * 1000} to ${MAX_AUTHZ_RECHECK_SECONDS * 1000} milliseconds (30 s to 24 h) for the gateway, which refreshes tokens and re-reads roles that often (got ${reuseMs}).`)
    return seconds
  }
  r.notice(name, 'info', `${name}: tokens are refreshed from Entra, and roles and groups re-read, at least every ${fromReuse} s (the gateway's AUTHZ_RECHECK_SECONDS); it does not lengthen sessions here (SESSION_EXPIRY_SECONDS does).`)
  return fromReuse
}

/**
 * A post-logout page behind the gateway that needs a session (LibreChat's own default,
 * DOMAIN_CLIENT/login, is one) signs the user straight back in: said at start.
 */
function signsBackIn (r: EnvReader, idp: Pick<IdentityProviderSettings, 'publicOrigin' | 'postLogoutRedirectUri'>, rules: AuthzRules): void {
  if (idp.postLogoutRedirectUri === '' || idp.publicOrigin === '') return
  const target = new URL(idp.postLogoutRedirectUri)
  if (target.origin !== idp.publicOrigin || target.pathname === SIGNED_OUT_PATH) return
  const path = normalizePath(target.pathname)
  if (path !== undefined && isPublic(rules, 'GET', path)) return
  r.notice('OPENID_POST_LOGOUT_REDIRECT_URI', 'warn', `OPENID_POST_LOGOUT_REDIRECT_URI is a page behind the gateway that needs a session, so sign-out is followed at once by a new sign-in; use ${idp.publicOrigin}${SIGNED_OUT_PATH} (the default), or make ${target.pathname} public in AUTHZ_RULES_FILE.`)
}
