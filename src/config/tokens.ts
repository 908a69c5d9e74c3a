// The user's tokens beyond sign-in: reuse and refresh, Microsoft Graph, what is forwarded
// upstream, what the browser may ask /oauth2/token for, SharePoint and people search.
import type { IdentityProviderSettings } from './identity-provider.js'
import { EnvReader, isLoopbackHost, type Section } from './readers.js'

export interface TokenSettings {
  graphApiUrl: string
  /** Full Graph scope URLs, e.g. https://graph.microsoft.com/User.Read. */
  graphScopes: string[]
  /** The scope string sent at sign-in: OPENID_SCOPE + offline_access + Graph scopes. */
  signInScope: string
  reuseTokens: boolean
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
}

export function parseTokens (env: NodeJS.ProcessEnv, idp: Pick<IdentityProviderSettings, 'scope'>): Section<TokenSettings> {
  const r = new EnvReader(env)
  const graphUrl = r.url('GRAPH_API_URL', 'https://graph.microsoft.com', r.str('GRAPH_API_URL') ?? 'https://graph.microsoft.com')
  if (graphUrl !== undefined && graphUrl.protocol === 'http:' && !isLoopbackHost(graphUrl.hostname)) {
    r.problem('GRAPH_API_URL', 'GRAPH_API_URL must use https:// (http:// only for a loopback test stand-in).')
  }
  const graphApiUrl = graphUrl?.origin ?? 'https://graph.microsoft.com'
  const toGraphScope = (name: string): string => /^https?:\/\//i.test(name) ? name : `${graphApiUrl}/${name}`
  const graphScopes = r.words('OPENID_GRAPH_SCOPES').map(toGraphScope)
  const reuseTokens = r.bool('OPENID_REUSE_TOKENS', false)
  const tokenRefreshSkewSeconds = r.int('TOKEN_REFRESH_SKEW_SECONDS', 300, 0, 3000)
  const refreshLockSeconds = r.int('REFRESH_LOCK_SECONDS', 5, 1, 120)
  const forwardAccessToken = r.bool('FORWARD_ACCESS_TOKEN', graphScopes.length > 0)
  const forwardAuthorizationBearer = r.bool('FORWARD_AUTHORIZATION_BEARER', false)
  const identitySigningKey = r.str('IDENTITY_SIGNING_KEY')

  // --- SharePoint file picker and the token endpoint
  const sharePointEnabled = r.bool('ENABLE_SHAREPOINT_FILEPICKER', false)
  const sharePointBase = r.str('SHAREPOINT_BASE_URL')
  r.url('SHAREPOINT_BASE_URL', 'https://contoso.sharepoint.com', sharePointBase)
  const sharePointScope = r.str('SHAREPOINT_PICKER_SHAREPOINT_SCOPE')
  if (sharePointScope !== undefined && !/^https:\/\/[^/\s]+\/\S+$/.test(sharePointScope)) {
    r.problem('SHAREPOINT_PICKER_SHAREPOINT_SCOPE', `SHAREPOINT_PICKER_SHAREPOINT_SCOPE must be a full scope such as https://contoso.sharepoint.com/AllSites.Read (got "${sharePointScope}").`)
  }
  const sharePointGraphScopeRaw = r.str('SHAREPOINT_PICKER_GRAPH_SCOPE')
  const sharePointGraphScope = sharePointGraphScopeRaw !== undefined ? toGraphScope(sharePointGraphScopeRaw) : undefined
  if (sharePointEnabled && (sharePointBase === undefined || sharePointScope === undefined)) {
    r.problem('ENABLE_SHAREPOINT_FILEPICKER', 'ENABLE_SHAREPOINT_FILEPICKER=true needs SHAREPOINT_BASE_URL and SHAREPOINT_PICKER_SHAREPOINT_SCOPE (e.g. https://contoso.sharepoint.com and https://contoso.sharepoint.com/AllSites.Read).')
  }
  const extraAllowed = r.words('TOKEN_ALLOWED_SCOPES')
  const tokenAllowedScopes = [...new Set([...graphScopes, ...(sharePointScope !== undefined ? [sharePointScope] : []), ...(sharePointGraphScope !== undefined ? [sharePointGraphScope] : []), ...extraAllowed])]

  // --- people search
  const peopleSearch = r.bool('USE_ENTRA_ID_FOR_PEOPLE_SEARCH', false)
  const includeOwnersAsMembers = r.bool('ENTRA_ID_INCLUDE_OWNERS_AS_MEMBERS', false)
  if (peopleSearch && !reuseTokens) {
    r.problem('USE_ENTRA_ID_FOR_PEOPLE_SEARCH', 'USE_ENTRA_ID_FOR_PEOPLE_SEARCH=true needs OPENID_REUSE_TOKENS=true (as in LibreChat\'s guide) and OPENID_GRAPH_SCOPES.')
  }

  return r.section({
    graphApiUrl,
    graphScopes,
    signInScope: [...new Set([...idp.scope.split(' ').filter(Boolean), 'offline_access', ...graphScopes])].join(' '),
    reuseTokens,
    tokenRefreshSkewSeconds,
    refreshLockSeconds,
    forwardAccessToken,
    forwardAuthorizationBearer,
    identitySigningKey,
    tokenAllowedScopes,
    sharePoint: { enabled: sharePointEnabled, baseUrl: sharePointBase, sharePointScope, graphScope: sharePointGraphScope },
    peopleSearch,
    includeOwnersAsMembers
  })
}
