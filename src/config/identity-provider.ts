// The identity provider and the app registration: issuer, client, scopes, and the gateway's
// public origin the redirect URIs are built from. Names follow LibreChat's "OpenID with Azure
// Entra" guide, so an operator can reuse the same app registration and the same .env.
import type { ClaimNames } from '../principal/claims.js'
import { CertificateFileError, FederatedTokenError, loadCertificateFile, readFederatedToken, type CertificateVariable, type ClientCredentialSettings, type PasswordVariable } from './client-credential.js'
import { EnvReader, GUID, isLoopbackHost, type Section } from './readers.js'

export interface IdentityProviderSettings {
  /** Issuer without a trailing slash (the guide writes one; Entra's metadata has none). */
  issuer: string
  /** Entra tenant id taken from the issuer path, when the issuer is tenant-specific. */
  issuerTenantId: string | undefined
  /** The issuer admits every tenant (`common`, `organizations`, ...): an allow-list is needed. */
  multiTenant: boolean
  clientId: string
  /** '' when the client authenticates otherwise (clientCredential). */
  clientSecret: string
  /** How the client proves itself at the token endpoint: exactly one of secret, certificate, federated token. */
  clientCredential: ClientCredentialSettings
  scope: string
  callbackPath: string
  /** DOMAIN_SERVER: the gateway's public origin; redirect_uri is built from it, never from Host. */
  publicOrigin: string
  redirectUri: string
  clientUrl: string
  useEndSessionEndpoint: boolean
  /** OPENID_POST_LOGOUT_REDIRECT_URI, else the gateway's own signed-out page. */
  postLogoutRedirectUri: string
  /** OPENID_MAX_LOGOUT_URL_LENGTH: past it, end-session sends logout_hint + client_id instead of id_token_hint. */
  maxLogoutUrlLength: number
  /** OPENID_CLOCK_TOLERANCE: seconds of clock skew accepted in the IdP's tokens. */
  clockToleranceSeconds: number
  /** OPENID_AUDIENCE, sent as `audience` in the authorization request, as LibreChat does. */
  audience: string | undefined
  /** How the client authenticates at the token endpoint. */
  tokenEndpointAuthMethod: TokenEndpointAuthMethod
  /** Which claims fill the user name, name and email (LibreChat's OPENID_*_CLAIM). */
  claimNames: ClaimNames
}

export type TokenEndpointAuthMethod = 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'
const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_post', 'client_secret_basic', 'private_key_jwt']
/** Where Azure Identity (and the AKS webhook's AZURE_AUTHORITY_HOST) signs in when no host is given. */
const DEFAULT_AUTHORITY_HOST = 'https://login.microsoftonline.com/'

/** Entra's tenant of personal Microsoft accounts (admitted by `common` unless refused). */
export const MSA_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad'
const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers', '{tenantid}'])
export const DEFAULT_CALLBACK = '/oauth/openid/callback'
/** The gateway's "You are signed out" page: where sign-out ends unless OPENID_POST_LOGOUT_REDIRECT_URI says otherwise. */
export const SIGNED_OUT_PATH = '/oauth2/signed_out'
/** LibreChat's default for OPENID_MAX_LOGOUT_URL_LENGTH (Entra refuses much longer URLs, AADSTS90015). */
export const DEFAULT_MAX_LOGOUT_URL_LENGTH = 2000
/** LibreChat's default for OPENID_CLOCK_TOLERANCE, in seconds. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 300

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

/** The issuer's first path segment as written (`common`, a tenant id, ...); '' without an issuer. */
export function issuerSegment (issuer: string): string {
  if (issuer === '') return ''
  return new URL(issuer).pathname.split('/')[1] ?? ''
}

export function parseIdentityProvider (env: NodeJS.ProcessEnv): Section<IdentityProviderSettings> {
  const r = new EnvReader(env)
  // Azure Identity's names, as the AKS workload identity webhook injects them: fallbacks only,
  // the OPENID_* settings win. Every read unconditional (knownVariables).
  const azureTenantId = r.str('AZURE_TENANT_ID')
  const azureAuthorityHost = r.str('AZURE_AUTHORITY_HOST')
  const azureClientId = r.str('AZURE_CLIENT_ID')
  const issuerSet = r.str('OPENID_ISSUER')
  // Without OPENID_ISSUER, the tenant's v2.0 issuer at AZURE_AUTHORITY_HOST (as Azure Identity builds it).
  const issuerRaw = issuerSet ?? (azureTenantId !== undefined
    ? `${(azureAuthorityHost ?? DEFAULT_AUTHORITY_HOST).replace(/\/*$/, '/')}${encodeURIComponent(azureTenantId)}/v2.0`
    : r.required('OPENID_ISSUER', 'set it to https://login.microsoftonline.com/<tenant-id>/v2.0'))
  const issuerFix = 'https://login.microsoftonline.com/<tenant-id>/v2.0 with the Directory (tenant) ID from the app registration\'s Overview page in Entra'
  // The guide's own placeholders (pasted as is they start the gateway, and sign-in then fails
  // for every user): caught here, with the value to look up, instead of at discovery.
  const issuerPlaceholder = /\s/.test(issuerRaw)
  if (issuerPlaceholder) r.problem('OPENID_ISSUER', `OPENID_ISSUER contains spaces, so it still holds the guide's placeholder; set it to ${issuerFix}.`)
  const issuerUrl = issuerPlaceholder ? undefined : r.url('OPENID_ISSUER', 'https://login.microsoftonline.com/<tenant-id>/v2.0', issuerRaw)
  if (issuerUrl !== undefined) {
    let tenant = issuerUrl.pathname.split('/')[1] ?? ''
    try { tenant = decodeURIComponent(tenant) } catch {}
    if (isMicrosoftLoginHost(issuerUrl.hostname) && !isEntraTenantSegment(tenant)) {
      r.problem('OPENID_ISSUER', `OPENID_ISSUER must name the Directory (tenant) ID after ${issuerUrl.host}/ (got "${tenant}"): a GUID, a verified domain such as contoso.onmicrosoft.com, or common/organizations/consumers; set it to ${issuerFix}.`)
    }
    if (issuerUrl.protocol === 'http:' && !isLoopbackHost(issuerUrl.hostname)) {
      r.problem('OPENID_ISSUER', 'OPENID_ISSUER must use https:// (http:// is accepted only for a loopback test IdP).')
    }
    if (issuerUrl.search !== '' || issuerUrl.hash !== '') {
      r.problem('OPENID_ISSUER', 'OPENID_ISSUER must be the issuer URL itself, without a query or fragment.')
    }
    if (issuerUrl.pathname.includes('.well-known')) {
      r.problem('OPENID_ISSUER', 'OPENID_ISSUER must be the issuer (…/v2.0), not the .well-known discovery URL.')
    }
  }
  const firstSegment = issuerUrl?.pathname.split('/')[1] ?? ''

  const clientId = r.str('OPENID_CLIENT_ID') ?? azureClientId ?? r.required('OPENID_CLIENT_ID', 'set it to the Application (client) ID of the app registration')
  const clientIdFix = 'copy the Application (client) ID from the app registration\'s Overview page in Entra (a GUID: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)'
  // Entra's client ids are always GUIDs; anything else is a placeholder or another field pasted
  // (possibly the secret, so the value is not echoed).
  if (/\s/.test(clientId)) r.problem('OPENID_CLIENT_ID', `OPENID_CLIENT_ID contains spaces, so it still holds the guide's placeholder; ${clientIdFix}.`)
  else if (clientId !== '' && !GUID.test(clientId)) r.problem('OPENID_CLIENT_ID', `OPENID_CLIENT_ID must be a GUID, as every Application (client) ID is; ${clientIdFix}.`)
  const clientSecret = r.str('OPENID_CLIENT_SECRET') ?? ''
  // Entra's secret values have no spaces; the guide's placeholder ("Your client secret") does. Never echoed.
  if (/\s/.test(clientSecret)) r.problem('OPENID_CLIENT_SECRET', 'OPENID_CLIENT_SECRET contains spaces, so it still holds the guide\'s placeholder; set it to the secret\'s Value from Certificates & secrets in the app registration.')
  const clientCredential = readClientCredential(r, clientSecret)
  if (issuerSet !== undefined && azureTenantId !== undefined && GUID.test(firstSegmentOf(issuerSet)) && firstSegmentOf(issuerSet).toLowerCase() !== azureTenantId.toLowerCase()) {
    r.notice('AZURE_TENANT_ID', 'warn', `AZURE_TENANT_ID (${azureTenantId}) is not the tenant OPENID_ISSUER names; the gateway signs in at OPENID_ISSUER's tenant, where the app registration (and its federated credential) must be.`)
  }
  if (r.str('OPENID_CLIENT_ID') !== undefined && azureClientId !== undefined && azureClientId.toLowerCase() !== clientId.toLowerCase() && clientCredential.kind === 'federated') {
    r.notice('AZURE_CLIENT_ID', 'info', 'AZURE_CLIENT_ID differs from OPENID_CLIENT_ID: the federated token is presented for OPENID_CLIENT_ID, whose app registration must hold the federated credential.')
  }

  const scope = r.words('OPENID_SCOPE', 'openid profile email')
  if (!scope.includes('openid')) r.problem('OPENID_SCOPE', 'OPENID_SCOPE must include "openid" (the guide uses "openid profile email").')

  // Kept as written even when malformed: the doctor shows it (loadConfig refuses it anyway).
  const callbackPath = r.str('OPENID_CALLBACK_URL') ?? DEFAULT_CALLBACK
  if (!callbackPath.startsWith('/') || callbackPath.startsWith('//') || /[?#\s\\]/.test(callbackPath)) {
    r.problem('OPENID_CALLBACK_URL', `OPENID_CALLBACK_URL must be a path starting with / such as ${DEFAULT_CALLBACK} (got "${callbackPath}").`)
  }

  // --- where the gateway is reached
  const domainServerRaw = r.required('DOMAIN_SERVER', "set it to the gateway's public URL, e.g. https://chat.example.com (http://localhost:3080 for local use)")
  const domainServer = r.url('DOMAIN_SERVER', 'https://chat.example.com', domainServerRaw)
  if (domainServer !== undefined && (domainServer.pathname !== '/' || domainServer.search !== '' || domainServer.hash !== '')) {
    r.problem('DOMAIN_SERVER', `DOMAIN_SERVER must be an origin without a path, e.g. ${domainServer.origin} (got "${domainServerRaw}").`)
  }
  const publicOrigin = domainServer?.origin ?? ''
  const clientUrlRaw = r.str('DOMAIN_CLIENT')
  const clientUrl = clientUrlRaw !== undefined
    ? r.url('DOMAIN_CLIENT', 'https://chat.example.com', clientUrlRaw)?.href ?? ''
    : publicOrigin !== '' ? publicOrigin + '/' : ''

  const useEndSessionEndpoint = r.bool('OPENID_USE_END_SESSION_ENDPOINT', false)
  const postLogoutRaw = r.str('OPENID_POST_LOGOUT_REDIRECT_URI')
  // LibreChat's default, ${DOMAIN_CLIENT}/login, would start a new sign-in at once behind the gateway.
  const postLogoutRedirectUri = postLogoutRaw !== undefined
    ? r.url('OPENID_POST_LOGOUT_REDIRECT_URI', `https://chat.example.com${SIGNED_OUT_PATH}`, postLogoutRaw)?.href ?? ''
    : publicOrigin !== '' ? publicOrigin + SIGNED_OUT_PATH : ''
  const maxLogoutUrlLength = r.int('OPENID_MAX_LOGOUT_URL_LENGTH', DEFAULT_MAX_LOGOUT_URL_LENGTH, 1, 1_000_000)

  // --- how tokens are asked for and checked, as LibreChat reads the same settings
  const clockToleranceSeconds = r.int('OPENID_CLOCK_TOLERANCE', DEFAULT_CLOCK_TOLERANCE_SECONDS, 0, 3600)
  const audience = r.str('OPENID_AUDIENCE')
  const authMethodRaw = r.str('OPENID_TOKEN_ENDPOINT_AUTH_METHOD')
  const secretless = clientCredential.kind !== 'secret'
  const defaultMethod: TokenEndpointAuthMethod = secretless ? 'private_key_jwt' : 'client_secret_post'
  let tokenEndpointAuthMethod: TokenEndpointAuthMethod = defaultMethod
  if (authMethodRaw?.toLowerCase() === 'none') {
    r.problem('OPENID_TOKEN_ENDPOINT_AUTH_METHOD', 'OPENID_TOKEN_ENDPOINT_AUTH_METHOD=none is not supported: the gateway is a confidential client; unset it, or set client_secret_post or client_secret_basic with OPENID_CLIENT_SECRET.')
  } else {
    tokenEndpointAuthMethod = r.oneOf('OPENID_TOKEN_ENDPOINT_AUTH_METHOD', TOKEN_ENDPOINT_AUTH_METHODS, defaultMethod, 'client_secret_post, client_secret_basic or private_key_jwt')
    // The method follows from the credential; a value that contradicts it is refused, not ignored.
    if (secretless && tokenEndpointAuthMethod !== 'private_key_jwt') {
      r.problem('OPENID_TOKEN_ENDPOINT_AUTH_METHOD', `OPENID_TOKEN_ENDPOINT_AUTH_METHOD=${tokenEndpointAuthMethod} needs OPENID_CLIENT_SECRET, but the gateway authenticates with a ${clientCredential.kind === 'certificate' ? 'certificate' : 'federated token'}: unset it (or set private_key_jwt).`)
      tokenEndpointAuthMethod = 'private_key_jwt'
    } else if (!secretless && tokenEndpointAuthMethod === 'private_key_jwt' && clientSecret !== '') {
      r.problem('OPENID_TOKEN_ENDPOINT_AUTH_METHOD', 'OPENID_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt needs a certificate (OPENID_CLIENT_CERTIFICATE_PATH) or a federated token (AZURE_FEDERATED_TOKEN_FILE) instead of OPENID_CLIENT_SECRET.')
      tokenEndpointAuthMethod = 'client_secret_post'
    }
  }
  // Always on here, whatever LibreChat is told: accepted, and said so when turned off.
  for (const [name, what] of [['OPENID_USE_PKCE', 'PKCE (S256)'], ['OPENID_GENERATE_NONCE', 'a nonce']] as const) {
    const v = r.str(name)
    if (v !== undefined && !/^(true|1|yes|on)$/i.test(v)) {
      r.notice(name, 'info', `${name}=${v} is not followed: the gateway always sends ${what} in every sign-in (LibreChat still reads its own value).`)
    }
  }
  const claimNames: ClaimNames = {
    username: r.str('OPENID_USERNAME_CLAIM'),
    name: r.str('OPENID_NAME_CLAIM'),
    email: r.str('OPENID_EMAIL_CLAIM')
  }

  return r.section({
    issuer: issuerUrl !== undefined ? issuerUrl.href.replace(/\/+$/, '') : '',
    issuerTenantId: GUID.test(firstSegment) ? firstSegment.toLowerCase() : undefined,
    multiTenant: MULTI_TENANT_SEGMENTS.has(firstSegment.toLowerCase()),
    clientId,
    clientSecret,
    clientCredential,
    scope: scope.join(' '),
    callbackPath,
    publicOrigin,
    redirectUri: publicOrigin + callbackPath,
    clientUrl,
    useEndSessionEndpoint,
    postLogoutRedirectUri,
    maxLogoutUrlLength,
    clockToleranceSeconds,
    audience,
    tokenEndpointAuthMethod,
    claimNames
  })
}

function firstSegmentOf (issuer: string): string {
  try {
    return decodeURIComponent(new URL(issuer).pathname.split('/')[1] ?? '')
  } catch {
    return ''
  }
}

/**
 * Exactly one credential: OPENID_CLIENT_SECRET, a certificate (OPENID_CLIENT_CERTIFICATE_PATH,
 * else Azure Identity's AZURE_CLIENT_CERTIFICATE_PATH) or a federated token
 * (AZURE_FEDERATED_TOKEN_FILE). Its file is read now, so a bad one is one line at start.
 */
function readClientCredential (r: EnvReader, clientSecret: string): ClientCredentialSettings {
  const ownPath = r.str('OPENID_CLIENT_CERTIFICATE_PATH')
  const azurePath = r.str('AZURE_CLIENT_CERTIFICATE_PATH')
  const ownPassword = r.str('OPENID_CLIENT_CERTIFICATE_PASSWORD')
  const azurePassword = r.str('AZURE_CLIENT_CERTIFICATE_PASSWORD')
  const tokenFile = r.str('AZURE_FEDERATED_TOKEN_FILE')
  const certPath = ownPath ?? azurePath
  const variable: CertificateVariable = ownPath !== undefined ? 'OPENID_CLIENT_CERTIFICATE_PATH' : 'AZURE_CLIENT_CERTIFICATE_PATH'
  const given = [
    ...(clientSecret !== '' ? ['OPENID_CLIENT_SECRET'] : []),
    ...(certPath !== undefined ? [variable] : []),
    ...(tokenFile !== undefined ? ['AZURE_FEDERATED_TOKEN_FILE'] : [])
  ]
  if (given.length === 0) {
    r.problem('OPENID_CLIENT_SECRET', 'OPENID_CLIENT_SECRET is not set: set it to a client secret value of the app registration, or use a certificate (OPENID_CLIENT_CERTIFICATE_PATH) or a federated token (AZURE_FEDERATED_TOKEN_FILE) instead.')
    return { kind: 'secret' }
  }
  if (given.length > 1) {
    r.problem(given[1] as string, `${given.join(' and ')} are set together: the gateway authenticates with exactly one credential; unset all but the one the app registration should accept.`)
    return { kind: 'secret' }
  }
  if (certPath !== undefined) {
    const passwordVariable: PasswordVariable = ownPassword !== undefined || azurePassword === undefined ? 'OPENID_CLIENT_CERTIFICATE_PASSWORD' : 'AZURE_CLIENT_CERTIFICATE_PASSWORD'
    const certificate = { kind: 'certificate' as const, path: certPath, variable, password: ownPassword ?? azurePassword, passwordVariable }
    try {
      const loaded = loadCertificateFile(certificate)
      if (loaded.notAfter.getTime() <= Date.now()) r.problem(variable, `${variable}: the certificate in ${certPath} expired on ${loaded.notAfter.toISOString()}; upload a new one to the app registration (Certificates & secrets) and put it in this file.`)
    } catch (err) {
      if (!(err instanceof CertificateFileError)) throw err
      r.problem(err.variable, err.message)
    }
    return certificate
  }
  if (tokenFile !== undefined) {
    try {
      readFederatedToken(tokenFile)
    } catch (err) {
      if (!(err instanceof FederatedTokenError)) throw err
      r.problem('AZURE_FEDERATED_TOKEN_FILE', err.message)
    }
    return { kind: 'federated', tokenFile }
  }
  return { kind: 'secret' }
}
