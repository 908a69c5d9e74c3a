// The gateway's whole configuration: read from the environment once, validated once, typed.
// Names follow LibreChat's "OpenID with Azure Entra" guide wherever the guide names a setting,
// so an operator can reuse the same app registration and the same .env.
import { isIP } from 'node:net'
import { loadRulesFile, normalizePath, type AuthzRules, EMPTY_RULES } from './policy/rules.js'

export type TokenKind = 'id' | 'access' | 'userinfo'
export type SessionStoreKind = 'memory' | 'redis'

export interface RequiredRole {
  /** Any one of these admits the user (LibreChat splits OPENID_REQUIRED_ROLE on commas). */
  roles: string[]
  tokenKind: TokenKind
  /** Dot path into the chosen token's claims, already split: `realm_access.roles` → ['realm_access', 'roles']. */
  path: string[]
}

export interface GatewayConfig {
  /** Issuer without a trailing slash (the guide writes one; Entra's metadata has none). */
  issuer: string
  /** Entra tenant id taken from the issuer path, when the issuer is tenant-specific. */
  issuerTenantId: string | undefined
  clientId: string
  clientSecret: string
  /** First one signs and encrypts; all verify (rotation signs nobody out). */
  sessionSecrets: string[]
  scope: string
  callbackPath: string
  /** DOMAIN_SERVER: the gateway's public origin; redirect_uri is built from it, never from Host. */
  publicOrigin: string
  redirectUri: string
  clientUrl: string
  useEndSessionEndpoint: boolean
  postLogoutRedirectUri: string
  port: number
  host: string
  /** How long a SIGTERM waits for open requests (chat streams) before cutting them. */
  shutdownTimeoutSeconds: number
  /** A client must finish sending its request headers within this (slowloris). */
  headersTimeoutSeconds: number
  /** An idle keep-alive connection from a client is closed after this. */
  keepAliveTimeoutSeconds: number
  upstreamUrl: string
  upstreamHealthPath: string
  /** An upstream that sends no response headers within this many seconds gets a 504 (bodies and streams have no timeout). */
  upstreamHeadersTimeoutSeconds: number
  /** Past this many requests in flight to the upstream, new ones get a prompt 503 and /readyz says so. */
  upstreamMaxConcurrent: number
  sessionStore: SessionStoreKind
  redisUrl: string | undefined
  trustedProxies: string[]
  logLevel: string
  requiredRole: RequiredRole | undefined
  sessionExpirySeconds: number
  memoryStoreMaxSessions: number
  /** Cookie name: `__Host-` prefixed and Secure when DOMAIN_SERVER is https. */
  cookieName: string
  /** The short-lived sealed cookie holding this browser's pending sign-ins. */
  loginCookieName: string
  secureCookies: boolean

  // --- authorization (groups, tenants, per-path rules, API bearer tokens)
  /** Any one of these group object ids admits the user (with a required role, both must hold). */
  requiredGroups: string[]
  /** Tenants whose users may sign in; the issuer's own tenant for a single-tenant issuer. */
  allowedTenants: string[] | undefined
  multiTenant: boolean
  authzRecheckSeconds: number
  rules: AuthzRules
  bearerAuth: boolean
  forwardGroupsMaxBytes: number

  // --- tokens (reuse, refresh, Graph, forwarding, token endpoint)
  graphApiUrl: string
  /** Full Graph scope URLs, e.g. https://graph.microsoft.com/User.Read. */
  graphScopes: string[]
  /** The scope string sent at sign-in: OPENID_SCOPE + offline_access + Graph scopes. */
  signInScope: string
  reuseTokens: boolean
  sessionMaxAgeSeconds: number
  tokenRefreshSkewSeconds: number
  /** TTL of a session's refresh lock among replicas; its holder extends it while it works. */
  refreshLockSeconds: number
  forwardAccessToken: boolean
  forwardAuthorizationBearer: boolean
  identitySigningKey: string | undefined
  /** Scopes the browser may ask /oauth2/token for (full scope strings). */
  tokenAllowedScopes: string[]
  sharePoint: { enabled: boolean, baseUrl: string | undefined, sharePointScope: string | undefined, graphScope: string | undefined }
  peopleSearch: boolean
  includeOwnersAsMembers: boolean

  // --- LibreChat coexistence and operator experience
  /** Upstream routes whose 2xx answer ends the gateway session too (`POST /api/auth/logout`). */
  logoutPaths: Array<{ method: string, path: string }>
  autoRedirect: boolean
  title: string
  buttonLabel: string
  imageUrl: string | undefined
  logoFile: string | undefined
  metricsPort: number | undefined
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor (problems: string[]) {
    super(problems.join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const TOKEN_KINDS: TokenKind[] = ['id', 'access', 'userinfo']
/** Entra's tenant of personal Microsoft accounts (admitted by `common` unless refused). */
export const MSA_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad'
const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers', '{tenantid}'])
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export function isLoopbackHost (hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  return h === '::1'
}

/** Hosts that serve Entra ID's sign-in (public, government and national clouds; v1 and v2). */
const MICROSOFT_LOGIN_HOSTS = new Set([
  'login.microsoftonline.com', 'login.microsoft.com', 'login.windows.net', 'sts.windows.net',
  'login.microsoftonline.us', 'login-us.microsoftonline.com', 'login.usgovcloudapi.net',
  'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn', 'login.microsoftonline.de'
])
const ENTRA_MULTI_TENANT_ENDPOINTS = new Set(['common', 'organizations', 'consumers'])
const DOMAIN_NAME = /^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/i

/**
 * Whether the first path segment of an issuer on a Microsoft login host names a tenant Entra
 * knows: its id, one of its verified domain names, or a multi-tenant endpoint. Anything else
 * (the guide's "Your Directory (tenant ID)", a display name) only fails later, at discovery.
 */
export function isEntraTenantSegment (segment: string): boolean {
  // Not MULTI_TENANT_SEGMENTS: its `{tenantid}` is the metadata's template, not a URL to sign in at.
  return GUID.test(segment) || ENTRA_MULTI_TENANT_ENDPOINTS.has(segment.toLowerCase()) || DOMAIN_NAME.test(segment)
}

export function isMicrosoftLoginHost (hostname: string): boolean {
  return MICROSOFT_LOGIN_HOSTS.has(hostname.toLowerCase())
}

/**
 * Every variable the gateway reads, found by running the reader itself over an environment
 * that records each name asked for (so the list cannot drift from the code). Every read in
 * loadConfig is unconditional for this reason.
 */
export function knownVariables (): string[] {
  const seen = new Set<string>()
  const env = new Proxy({}, { get (_target, key) { if (typeof key === 'string') seen.add(key); return undefined } })
  try { loadConfig(env as NodeJS.ProcessEnv) } catch {}
  return [...seen].sort()
}

/**
 * Reads and validates the configuration. Every problem found is reported at once, one line
 * each, naming the variable and what is expected; secrets are never echoed back.
 */
export function loadConfig (env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const problems: string[] = []
  const str = (name: string): string | undefined => {
    const v = env[name]
    if (v === undefined) return undefined
    const t = v.trim()
    return t === '' ? undefined : t
  }
  const required = (name: string, what: string): string => {
    const v = str(name)
    if (v === undefined) problems.push(`${name} is not set: ${what}.`)
    return v ?? ''
  }
  const bool = (name: string, def: boolean): boolean => {
    const v = str(name)
    if (v === undefined) return def
    if (/^(true|1|yes|on)$/i.test(v)) return true
    if (/^(false|0|no|off)$/i.test(v)) return false
    problems.push(`${name} must be true or false (got "${v}").`)
    return def
  }
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = str(name)
    if (v === undefined) return def
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${v}").`)
      return def
    }
    return Number(v)
  }
  const httpUrl = (name: string, raw: string, what: string): URL | undefined => {
    if (raw === '') return undefined
    // A URL never holds a space; the guide's placeholders do (and new URL() would accept them in a path).
    if (/\s/.test(raw)) {
      problems.push(`${name} contains spaces, so it still holds a placeholder; set it to an absolute URL such as ${what}.`)
      return undefined
    }
    let u: URL
    try {
      u = new URL(raw)
    } catch {
      problems.push(`${name} must be an absolute URL such as ${what} (got "${raw}").`)
      return undefined
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      problems.push(`${name} must start with https:// (got "${raw}").`)
      return undefined
    }
    if (u.username !== '' || u.password !== '') {
      problems.push(`${name} must not contain a user name or password.`)
      return undefined
    }
    return u
  }

  // --- the IdP
  const issuerRaw = required('OPENID_ISSUER', 'set it to https://login.microsoftonline.com/<tenant-id>/v2.0')
  const issuerFix = 'https://login.microsoftonline.com/<tenant-id>/v2.0 with the Directory (tenant) ID from the app registration\'s Overview page in Entra'
  // The guide's own placeholders (pasted as is they start the gateway, and sign-in then fails
  // for every user): caught here, with the value to look up, instead of at discovery.
  const issuerPlaceholder = /\s/.test(issuerRaw)
  if (issuerPlaceholder) problems.push(`OPENID_ISSUER contains spaces, so it still holds the guide's placeholder; set it to ${issuerFix}.`)
  const issuerUrl = issuerPlaceholder ? undefined : httpUrl('OPENID_ISSUER', issuerRaw, 'https://login.microsoftonline.com/<tenant-id>/v2.0')
  if (issuerUrl !== undefined) {
    let tenant = issuerUrl.pathname.split('/')[1] ?? ''
    try { tenant = decodeURIComponent(tenant) } catch {}
    if (isMicrosoftLoginHost(issuerUrl.hostname) && !isEntraTenantSegment(tenant)) {
      problems.push(`OPENID_ISSUER must name the Directory (tenant) ID after ${issuerUrl.host}/ (got "${tenant}"): a GUID, a verified domain such as contoso.onmicrosoft.com, or common/organizations/consumers; set it to ${issuerFix}.`)
    }
    if (issuerUrl.protocol === 'http:' && !isLoopbackHost(issuerUrl.hostname)) {
      problems.push('OPENID_ISSUER must use https:// (http:// is accepted only for a loopback test IdP).')
    }
    if (issuerUrl.search !== '' || issuerUrl.hash !== '') {
      problems.push('OPENID_ISSUER must be the issuer URL itself, without a query or fragment.')
    }
    if (issuerUrl.pathname.includes('.well-known')) {
      problems.push('OPENID_ISSUER must be the issuer (…/v2.0), not the .well-known discovery URL.')
    }
  }
  const issuer = issuerUrl !== undefined ? issuerUrl.href.replace(/\/+$/, '') : ''
  const firstSegment = issuerUrl?.pathname.split('/')[1] ?? ''
  const issuerTenantId = GUID.test(firstSegment) ? firstSegment.toLowerCase() : undefined

  const clientId = required('OPENID_CLIENT_ID', 'set it to the Application (client) ID of the app registration')
  const clientIdFix = 'copy the Application (client) ID from the app registration\'s Overview page in Entra (a GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)'
  // Entra's client ids are always GUIDs; anything else is a placeholder or another field pasted
  // (possibly the secret, so the value is not echoed).
  if (/\s/.test(clientId)) problems.push(`OPENID_CLIENT_ID contains spaces, so it still holds the guide's placeholder; ${clientIdFix}.`)
  else if (clientId !== '' && !GUID.test(clientId)) problems.push(`OPENID_CLIENT_ID must be a GUID, as every Application (client) ID is; ${clientIdFix}.`)
  const clientSecret = required('OPENID_CLIENT_SECRET', 'set it to a client secret value of the app registration')
  // Entra's secret values have no spaces; the guide's placeholder ("Your client secret") does. Never echoed.
  if (/\s/.test(clientSecret)) problems.push('OPENID_CLIENT_SECRET contains spaces, so it still holds the guide\'s placeholder; set it to the secret\'s Value from Certificates & secrets in the app registration.')

  const secretRaw = required('OPENID_SESSION_SECRET', 'set it to a random string of at least 32 characters, e.g. the output of `openssl rand -hex 32`')
  const sessionSecrets = secretRaw === '' ? [] : secretRaw.split(',').map(s => s.trim())
  if (sessionSecrets.some(s => s.length < 32)) {
    problems.push('OPENID_SESSION_SECRET must be at least 32 characters (each, when a comma-separated rotation list); generate one with `openssl rand -hex 32`.')
  }

  const scope = (str('OPENID_SCOPE') ?? 'openid profile email').split(/[\s,]+/).filter(Boolean)
  if (!scope.includes('openid')) problems.push('OPENID_SCOPE must include "openid" (the guide uses "openid profile email").')

  let callbackPath = str('OPENID_CALLBACK_URL') ?? '/oauth/openid/callback'
  if (!callbackPath.startsWith('/') || callbackPath.startsWith('//') || /[?#\s\\]/.test(callbackPath)) {
    problems.push(`OPENID_CALLBACK_URL must be a path starting with / such as /oauth/openid/callback (got "${callbackPath}").`)
    callbackPath = '/oauth/openid/callback'
  }

  // --- where the gateway is reached
  const domainServerRaw = required('DOMAIN_SERVER', "set it to the gateway's public URL, e.g. https://chat.example.com (http://localhost:3080 for local use)")
  const domainServer = httpUrl('DOMAIN_SERVER', domainServerRaw, 'https://chat.example.com')
  if (domainServer !== undefined && (domainServer.pathname !== '/' || domainServer.search !== '' || domainServer.hash !== '')) {
    problems.push(`DOMAIN_SERVER must be an origin without a path, e.g. ${domainServer.origin} (got "${domainServerRaw}").`)
  }
  const publicOrigin = domainServer?.origin ?? ''
  const clientUrlRaw = str('DOMAIN_CLIENT')
  const clientUrl = clientUrlRaw !== undefined ? httpUrl('DOMAIN_CLIENT', clientUrlRaw, 'https://chat.example.com')?.href ?? '' : publicOrigin + '/'

  const useEndSessionEndpoint = bool('OPENID_USE_END_SESSION_ENDPOINT', false)
  const postLogoutRaw = str('OPENID_POST_LOGOUT_REDIRECT_URI')
  const postLogoutRedirectUri = postLogoutRaw !== undefined
    ? httpUrl('OPENID_POST_LOGOUT_REDIRECT_URI', postLogoutRaw, 'https://chat.example.com/')?.href ?? ''
    : clientUrl

  // --- the gateway itself
  const port = int('PORT', 3080, 0, 65535)
  const host = str('HOST') ?? '0.0.0.0'
  // Below Docker's default stop timeout (10 s) with room for the last second of closing, so
  // `docker stop` never ends in SIGKILL (compose's stop_grace_period stays above it).
  const shutdownTimeoutSeconds = int('SHUTDOWN_TIMEOUT_SECONDS', 8, 0, 3600)
  const headersTimeoutSeconds = int('HEADERS_TIMEOUT_SECONDS', 60, 1, 3600)
  // Above the 60 s idle timeout of common load balancers (AWS ALB, nginx): the gateway must not
  // close a connection the balancer is about to reuse, or that request fails with a 502.
  const keepAliveTimeoutSeconds = int('KEEP_ALIVE_TIMEOUT_SECONDS', 72, 1, 3600)
  const upstreamRaw = required('UPSTREAM_URL', 'set it to the app behind the gateway, e.g. http://api:3080 for LibreChat in docker compose')
  const upstream = httpUrl('UPSTREAM_URL', upstreamRaw, 'http://api:3080')
  if (upstream !== undefined && (upstream.search !== '' || upstream.hash !== '')) {
    problems.push('UPSTREAM_URL must not have a query or fragment.')
  }
  const upstreamHealthPath = str('UPSTREAM_HEALTH_PATH') ?? '/health'
  if (!upstreamHealthPath.startsWith('/')) problems.push('UPSTREAM_HEALTH_PATH must be a path starting with / (LibreChat: /health).')
  const upstreamHeadersTimeoutSeconds = int('UPSTREAM_HEADERS_TIMEOUT_SECONDS', 300, 1, 3600)
  const upstreamMaxConcurrent = int('UPSTREAM_MAX_CONCURRENT', 8192, 1, 1_000_000)

  const storeRaw = (str('SESSION_STORE') ?? 'memory').toLowerCase()
  let sessionStore: SessionStoreKind = 'memory'
  if (storeRaw === 'memory' || storeRaw === 'redis') sessionStore = storeRaw
  else problems.push(`SESSION_STORE must be "memory" or "redis" (got "${storeRaw}").`)
  const redisUrlRaw = str('REDIS_URL')
  let redisUrl: string | undefined
  if (sessionStore === 'redis') {
    if (redisUrlRaw === undefined) problems.push('REDIS_URL is not set: SESSION_STORE=redis needs it, e.g. redis://redis:6379/0.')
    else if (!/^rediss?:\/\//.test(redisUrlRaw)) problems.push('REDIS_URL must start with redis:// or rediss:// (e.g. redis://redis:6379/0).')
    else redisUrl = redisUrlRaw
  }

  const trustedProxies = (str('TRUSTED_PROXIES') ?? '').split(',').map(s => s.trim()).filter(Boolean)
  for (const cidr of trustedProxies) {
    const [addr, bits, extra] = cidr.split('/')
    const family = isIP(addr ?? '')
    const maxBits = family === 6 ? 128 : 32
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > maxBits))) {
      problems.push(`TRUSTED_PROXIES must be a comma-separated list of IP addresses or CIDRs such as 10.0.0.0/8 (bad entry "${cidr}").`)
    }
  }

  const logLevel = (str('LOG_LEVEL') ?? 'info').toLowerCase()
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}").`)

  // --- the guide's required role
  const roleKindRaw = (str('OPENID_REQUIRED_ROLE_TOKEN_KIND') ?? 'id').toLowerCase()
  let tokenKind: TokenKind = 'id'
  if ((TOKEN_KINDS as string[]).includes(roleKindRaw)) tokenKind = roleKindRaw as TokenKind
  else problems.push(`OPENID_REQUIRED_ROLE_TOKEN_KIND must be one of id, access, userinfo (got "${roleKindRaw}").`)
  const rolePathRaw = str('OPENID_REQUIRED_ROLE_PARAMETER_PATH') ?? 'roles'
  const rolePath = rolePathRaw.split('.')
  if (rolePath.some(p => p === '')) problems.push(`OPENID_REQUIRED_ROLE_PARAMETER_PATH must be a dot path such as roles or realm_access.roles (got "${rolePathRaw}").`)
  const roles = (str('OPENID_REQUIRED_ROLE') ?? '').split(',').map(s => s.trim()).filter(Boolean)
  const requiredRole = roles.length > 0 ? { roles, tokenKind, path: rolePath } : undefined

  const sessionExpirySeconds = int('SESSION_EXPIRY_SECONDS', 12 * 3600, 60, 90 * 24 * 3600)
  const memoryStoreMaxSessions = int('SESSION_MEMORY_MAX', 100_000, 100, 10_000_000)

  // --- authorization
  const list = (name: string): string[] => (str(name) ?? '').split(',').map(x => x.trim()).filter(Boolean)
  const requiredGroups = list('OPENID_REQUIRED_GROUPS')
  const multiTenant = MULTI_TENANT_SEGMENTS.has(firstSegment.toLowerCase())
  const allowedTenantsRaw = list('OPENID_ALLOWED_TENANTS').map(x => x.toLowerCase())
  for (const tid of allowedTenantsRaw) {
    if (!GUID.test(tid)) problems.push(`OPENID_ALLOWED_TENANTS must be a comma-separated list of tenant ids (GUIDs) (bad entry "${tid}").`)
  }
  if (multiTenant && allowedTenantsRaw.length === 0 && issuerUrl !== undefined) {
    problems.push(`OPENID_ALLOWED_TENANTS is not set: the issuer "${firstSegment}" admits every tenant, so list the tenant ids whose users may sign in.`)
  }
  let allowedTenants: string[] | undefined
  if (multiTenant) allowedTenants = allowedTenantsRaw
  else if (issuerTenantId !== undefined) allowedTenants = [...new Set([issuerTenantId, ...allowedTenantsRaw])]
  else if (allowedTenantsRaw.length > 0) allowedTenants = allowedTenantsRaw
  const authzRecheckSeconds = int('AUTHZ_RECHECK_SECONDS', 900, 30, 24 * 3600)
  const rulesFile = str('AUTHZ_RULES_FILE')
  let rules: AuthzRules = EMPTY_RULES
  if (rulesFile !== undefined) {
    const loaded = loadRulesFile(rulesFile)
    if ('problem' in loaded) problems.push(`AUTHZ_RULES_FILE: ${loaded.problem}`)
    else rules = loaded.rules
  }
  const bearerAuth = bool('BEARER_AUTH', false)
  const forwardGroupsMaxBytes = int('FORWARD_GROUPS_MAX_BYTES', 4096, 256, 65536)

  // --- tokens
  const graphRaw = str('GRAPH_API_URL') ?? 'https://graph.microsoft.com'
  const graphUrl = httpUrl('GRAPH_API_URL', graphRaw, 'https://graph.microsoft.com')
  if (graphUrl !== undefined && graphUrl.protocol === 'http:' && !isLoopbackHost(graphUrl.hostname)) {
    problems.push('GRAPH_API_URL must use https:// (http:// only for a loopback test stand-in).')
  }
  const graphApiUrl = graphUrl?.origin ?? 'https://graph.microsoft.com'
  const toGraphScope = (name: string): string => /^https?:\/\//.test(name) ? name : `${graphApiUrl}/${name}`
  const graphScopes = list('OPENID_GRAPH_SCOPES').map(toGraphScope)
  const reuseTokens = bool('OPENID_REUSE_TOKENS', false)
  const sessionMaxAgeSeconds = int('SESSION_MAX_AGE_SECONDS', 7 * 24 * 3600, 60, 90 * 24 * 3600)
  const tokenRefreshSkewSeconds = int('TOKEN_REFRESH_SKEW_SECONDS', 300, 0, 3000)
  const refreshLockSeconds = int('REFRESH_LOCK_SECONDS', 5, 1, 120)
  const forwardAccessToken = bool('FORWARD_ACCESS_TOKEN', graphScopes.length > 0)
  const forwardAuthorizationBearer = bool('FORWARD_AUTHORIZATION_BEARER', false)
  const identitySigningKey = str('IDENTITY_SIGNING_KEY')
  const sharePointEnabled = bool('ENABLE_SHAREPOINT_FILEPICKER', false)
  const sharePointBase = str('SHAREPOINT_BASE_URL')
  if (sharePointBase !== undefined) httpUrl('SHAREPOINT_BASE_URL', sharePointBase, 'https://contoso.sharepoint.com')
  const sharePointScope = str('SHAREPOINT_PICKER_SHAREPOINT_SCOPE')
  if (sharePointScope !== undefined && !/^https:\/\/[^/\s]+\/\S+$/.test(sharePointScope)) {
    problems.push(`SHAREPOINT_PICKER_SHAREPOINT_SCOPE must be a full scope such as https://contoso.sharepoint.com/AllSites.Read (got "${sharePointScope}").`)
  }
  const sharePointGraphScopeRaw = str('SHAREPOINT_PICKER_GRAPH_SCOPE')
  const sharePointGraphScope = sharePointGraphScopeRaw !== undefined ? toGraphScope(sharePointGraphScopeRaw) : undefined
  if (sharePointEnabled && (sharePointBase === undefined || sharePointScope === undefined)) {
    problems.push('ENABLE_SHAREPOINT_FILEPICKER=true needs SHAREPOINT_BASE_URL and SHAREPOINT_PICKER_SHAREPOINT_SCOPE (e.g. https://contoso.sharepoint.com and https://contoso.sharepoint.com/AllSites.Read).')
  }
  const extraAllowed = list('TOKEN_ALLOWED_SCOPES').join(' ').split(/\s+/).filter(Boolean)
  const tokenAllowedScopes = [...new Set([...graphScopes, ...(sharePointScope !== undefined ? [sharePointScope] : []), ...(sharePointGraphScope !== undefined ? [sharePointGraphScope] : []), ...extraAllowed])]
  const peopleSearch = bool('USE_ENTRA_ID_FOR_PEOPLE_SEARCH', false)
  const includeOwnersAsMembers = bool('ENTRA_ID_INCLUDE_OWNERS_AS_MEMBERS', false)
  if (peopleSearch && !reuseTokens) {
    problems.push('USE_ENTRA_ID_FOR_PEOPLE_SEARCH=true needs OPENID_REUSE_TOKENS=true (as in LibreChat\'s guide) and OPENID_GRAPH_SCOPES.')
  }

  // --- LibreChat coexistence and the operator
  const logoutPaths: Array<{ method: string, path: string }> = []
  for (const entry of (str('LOGOUT_PATHS') ?? 'POST /api/auth/logout').split(',').map(x => x.trim()).filter(Boolean)) {
    const m = /^(GET|POST|PUT|PATCH|DELETE)\s+(\/\S*)$/i.exec(entry)
    if (m === null) problems.push(`LOGOUT_PATHS must be a comma-separated list of "METHOD /path" such as "POST /api/auth/logout" (bad entry "${entry}").`)
    // Matched against the normalized request path, so /API/auth/logout/ is the same route.
    else logoutPaths.push({ method: (m[1] as string).toUpperCase(), path: normalizePath(m[2] as string) ?? (m[2] as string) })
  }
  const autoRedirect = bool('OPENID_AUTO_REDIRECT', true)
  const title = str('GATEWAY_TITLE') ?? 'LibreChat'
  const buttonLabel = str('OPENID_BUTTON_LABEL') ?? 'Continue with Microsoft'
  const imageRaw = str('OPENID_IMAGE_URL')
  const imageUrl = imageRaw !== undefined ? httpUrl('OPENID_IMAGE_URL', imageRaw, 'https://chat.example.com/logo.png')?.href : undefined
  const logoFile = str('GATEWAY_LOGO_FILE')
  const metricsPortRaw = str('METRICS_PORT')
  const metricsPort = metricsPortRaw !== undefined ? int('METRICS_PORT', 0, 1, 65535) : undefined
  if (metricsPort !== undefined && metricsPort === port) problems.push('METRICS_PORT must differ from PORT: metrics are never served on the public port.')

  if (problems.length > 0) throw new ConfigError(problems)

  const secureCookies = publicOrigin.startsWith('https:')
  return {
    issuer,
    issuerTenantId,
    clientId,
    clientSecret,
    sessionSecrets,
    scope: scope.join(' '),
    callbackPath,
    publicOrigin,
    redirectUri: publicOrigin + callbackPath,
    clientUrl,
    useEndSessionEndpoint,
    postLogoutRedirectUri,
    port,
    host,
    shutdownTimeoutSeconds,
    headersTimeoutSeconds,
    keepAliveTimeoutSeconds,
    upstreamUrl: (upstream as URL).origin + (upstream as URL).pathname.replace(/\/+$/, ''),
    upstreamHealthPath,
    upstreamHeadersTimeoutSeconds,
    upstreamMaxConcurrent,
    sessionStore,
    redisUrl,
    trustedProxies,
    logLevel,
    requiredRole,
    sessionExpirySeconds,
    memoryStoreMaxSessions,
    cookieName: secureCookies ? '__Host-entra-gw' : 'entra-gw',
    loginCookieName: secureCookies ? '__Host-entra-gw-login' : 'entra-gw-login',
    secureCookies,
    requiredGroups,
    allowedTenants,
    multiTenant,
    authzRecheckSeconds,
    rules,
    bearerAuth,
    forwardGroupsMaxBytes,
    graphApiUrl,
    graphScopes,
    signInScope: [...new Set([...scope, 'offline_access', ...graphScopes])].join(' '),
    reuseTokens,
    sessionMaxAgeSeconds,
    tokenRefreshSkewSeconds,
    refreshLockSeconds,
    forwardAccessToken,
    forwardAuthorizationBearer,
    identitySigningKey,
    tokenAllowedScopes,
    sharePoint: { enabled: sharePointEnabled, baseUrl: sharePointBase, sharePointScope, graphScope: sharePointGraphScope },
    peopleSearch,
    includeOwnersAsMembers,
    logoutPaths,
    autoRedirect,
    title,
    buttonLabel,
    imageUrl,
    logoFile,
    metricsPort
  }
}
