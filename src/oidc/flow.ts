// The OpenID Connect steps, as small functions over openid-client's Configuration: discover
// the IdP, build the authorization request, redeem the code and check the ID token, build the
// end-session URL. No HTTP server here; the sign-in plugin wires these to requests.
import * as client from 'openid-client'
import type { GatewayConfig } from '../config.js'
import { isLoopbackHost, MSA_TENANT_ID } from '../config.js'
import type { Claims } from '../principal/claims.js'
import { clientAuthentication, credentialFailure, type CredentialEvent } from './client-auth.js'
import { isIssuerTemplate, TENANT_PLACEHOLDER } from './issuer.js'
import { templateFetch, templateVerifier, TenantIdTokenError, withTenantIdToken, type TemplateHolder } from './tenant-tokens.js'

/** An ID token issued longer ago than this is refused even if not yet expired. */
export const MAX_ID_TOKEN_AGE_SECONDS = 600
export const LOGIN_TRANSACTION_SECONDS = 600

/**
 * `fetch` carries every request of this configuration (discovery, JWKS, token, UserInfo):
 * the egress fetch, which knows the outbound proxy.
 */
export async function discover (config: GatewayConfig, fetch: client.CustomFetch, onCredentialEvent?: CredentialEvent): Promise<client.Configuration> {
  const issuer = new URL(config.issuer)
  // The discovery document's own URL: openid-client then leaves the issuer check to us, which
  // accepts Entra's `{tenantid}` template on any host (it does so only for login.microsoftonline.com).
  const wellKnown = new URL(`${config.issuer}/.well-known/openid-configuration`)
  const holder: TemplateHolder = {}
  const insecure = issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname)
  const metadata: Partial<client.ClientMetadata> = {
    ...(config.clientCredential.kind === 'secret' ? { client_secret: config.clientSecret } : {}),
    // Pin the algorithm Entra signs with, so a token signed otherwise is refused.
    id_token_signed_response_alg: 'RS256',
    // OPENID_CLOCK_TOLERANCE, in seconds, as LibreChat reads it.
    [client.clockTolerance]: config.clockToleranceSeconds
  }
  // The secret, a certificate's assertion or a federated token (oidc/client-auth.ts).
  const auth = clientAuthentication(config, onCredentialEvent)
  const oidc = await client.discovery(wellKnown, config.clientId, metadata, auth, {
    execute: insecure ? [client.allowInsecureRequests] : [],
    // Both kept by the configuration for its later requests.
    [client.customFetch]: templateFetch(fetch, holder),
    timeout: 5
  })
  const server = oidc.serverMetadata()
  if (!issuerMatches(config.issuer, server.issuer)) {
    throw new Error(`discovered metadata issuer does not match the expected issuer (${server.issuer}, expected ${config.issuer})`)
  }
  if (isIssuerTemplate(server.issuer)) {
    if (server.jwks_uri === undefined || server.token_endpoint === undefined) throw new Error('the discovery document names no jwks_uri or token_endpoint')
    holder.template = {
      issuer: server.issuer,
      tokenEndpoint: server.token_endpoint,
      verify: templateVerifier({ issuer: server.issuer, jwksUri: server.jwks_uri, clientId: config.clientId, clockToleranceSeconds: config.clockToleranceSeconds, fetch })
    }
    templated.add(oidc)
  }
  // openid-client trusts the TLS channel for ID tokens from the token endpoint unless told
  // otherwise; we verify their signatures against the IdP's JWKS as well.
  client.enableNonRepudiationChecks(oidc)
  return oidc
}

/** Configurations whose issuer is Entra's `{tenantid}` template (their ID tokens are verified in tenant-tokens.ts). */
const templated = new WeakSet<client.Configuration>()
export const isTemplated = (oidc: client.Configuration): boolean => templated.has(oidc)

/**
 * The discovered issuer is the configured one or, for a multi-tenant endpoint (`common`,
 * `organizations`, `consumers`), the configured one with that segment as `{tenantid}`.
 */
export function issuerMatches (configured: string, discovered: string): boolean {
  if (new URL(discovered).href === new URL(configured).href) return true
  const url = new URL(configured)
  const segments = url.pathname.split('/')
  const segment = (segments[1] ?? '').toLowerCase()
  if (!['common', 'organizations', 'consumers'].includes(segment)) return false
  // `consumers` publishes one concrete tenant, the personal accounts'; the others the template.
  segments[1] = segment === 'consumers' ? MSA_TENANT_ID : TENANT_PLACEHOLDER
  return discovered === `${url.origin}${segments.join('/')}`
}

/** What the gateway remembers between the redirect to the IdP and the callback. */
export interface LoginTransaction {
  codeVerifier: string
  nonce: string
  returnTo: string
  /** Epoch milliseconds after which the callback is refused. */
  expiresAt: number
}

export async function beginSignIn (
  oidc: client.Configuration,
  opts: { redirectUri: string, scope: string, returnTo: string, now?: number, prompt?: string, audience?: string | undefined }
): Promise<{ url: URL, state: string, transaction: LoginTransaction }> {
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  // PKCE, state and nonce always: Entra supports S256 without advertising it.
  const params: Record<string, string> = {
    redirect_uri: opts.redirectUri,
    scope: opts.scope,
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce
  }
  if (opts.prompt !== undefined) params.prompt = opts.prompt
  // OPENID_AUDIENCE, passed as LibreChat passes it (IdPs such as Auth0 pick the API by it).
  if (opts.audience !== undefined) params.audience = opts.audience
  const url = client.buildAuthorizationUrl(oidc, params)
  const now = opts.now ?? Date.now()
  return { url, state, transaction: { codeVerifier, nonce, returnTo: opts.returnTo, expiresAt: now + LOGIN_TRANSACTION_SECONDS * 1000 } }
}

export class SignInError extends Error {
  /** Stable, loggable reason; never holds a code, state or token. */
  readonly reason: string
  /** The IdP's own error code (an AADSTS number when Entra says it), for the helpdesk. */
  readonly idpError: string | undefined
  /** The IdP's `error` and `error_description` as it sent them (Microsoft's words, for the log). */
  readonly idp: { error: string, description: string | undefined } | undefined
  constructor (reason: string, message: string, opts: { idpError?: string, idp?: { error: string, description: string | undefined }, cause?: unknown } = {}) {
    super(message, { cause: opts.cause })
    this.name = 'SignInError'
    this.reason = reason
    this.idpError = opts.idpError
    this.idp = opts.idp
  }
}

export interface SignInResult {
  claims: Claims
  idToken: string
  accessToken: string
  refreshToken: string | undefined
  /** Epoch seconds. */
  accessTokenExpiresAt: number | undefined
  scope: string | undefined
}

/**
 * Redeems the authorization code and checks the ID token: signature (RS256, IdP's JWKS),
 * iss, aud/azp, exp, nonce and state (openid-client), then iat freshness and the tenant.
 */
export async function completeSignIn (
  oidc: client.Configuration,
  opts: { callbackUrl: URL, state: string, transaction: LoginTransaction, allowedTenants: readonly string[] | undefined, clockToleranceSeconds: number, now?: number }
): Promise<SignInResult> {
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>
  let tenantIdToken: { idToken?: string, claims?: Claims } = {}
  const template = isTemplated(oidc)
  try {
    // With the issuer template, the ID token is verified by tenant-tokens.ts (the nonce below).
    ({ result: tokens, ...tenantIdToken } = await withTenantIdToken(template, async () => await client.authorizationCodeGrant(oidc, opts.callbackUrl, {
      pkceCodeVerifier: opts.transaction.codeVerifier,
      expectedState: opts.state,
      ...(template ? {} : { expectedNonce: opts.transaction.nonce, idTokenExpected: true })
    })))
  } catch (err) {
    if (err instanceof TenantIdTokenError) throw new SignInError('token_invalid', `the sign-in response failed validation (${err.message})`, { cause: err })
    if (err instanceof client.AuthorizationResponseError) {
      const description = typeof err.error_description === 'string' ? err.error_description : undefined
      const aadsts = /AADSTS\d+/.exec(description ?? '')?.[0]
      throw new SignInError('idp_error', `the identity provider answered ${err.error}`, { idpError: aadsts ?? err.error, idp: { error: err.error, description }, cause: err })
    }
    const credential = credentialFailure(err)
    if (credential !== undefined) throw new SignInError('client_credential', credential.message, { cause: err })
    if (idpUnreachable(err)) {
      throw new SignInError('idp_unavailable', `the token endpoint could not be reached (${describeFailure(err)})`, { cause: err })
    }
    if (err instanceof client.ResponseBodyError) {
      // Entra's token endpoint names the cause (a wrong or expired client secret) only in the
      // description's AADSTS code.
      const description = typeof err.error_description === 'string' ? err.error_description : undefined
      const aadsts = /AADSTS\d+/.exec(description ?? '')?.[0]
      throw new SignInError('token_error', `the token endpoint refused the code: ${err.error}`, { idpError: aadsts ?? err.error, idp: { error: err.error, description }, cause: err })
    }
    const code = (err as { code?: string }).code
    throw new SignInError('token_invalid', `the sign-in response failed validation (${code ?? (err as Error).message})`, { cause: err })
  }
  const claims = template ? tenantIdToken.claims : tokens.claims() as Claims | undefined
  const idToken = template ? tenantIdToken.idToken : tokens.id_token
  if (claims === undefined || idToken === undefined) throw new SignInError('token_invalid', 'the IdP returned no ID token')
  if (template && claims.nonce !== opts.transaction.nonce) throw new SignInError('token_invalid', 'the sign-in response failed validation (nonce)')

  const now = Math.floor((opts.now ?? Date.now()) / 1000)
  const iat = claims.iat
  if (typeof iat !== 'number') throw new SignInError('token_invalid', 'the ID token has no iat')
  if (iat < now - MAX_ID_TOKEN_AGE_SECONDS) throw new SignInError('token_stale', `the ID token was issued ${now - iat}s ago`)
  if (iat > now + opts.clockToleranceSeconds) throw new SignInError('token_future', `the ID token's iat is ${iat - now}s in the future (clock skew?)`)

  if (opts.allowedTenants !== undefined) {
    const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : undefined
    if (tid === undefined || !opts.allowedTenants.includes(tid)) {
      throw new SignInError('tenant_not_allowed', `the ID token's tenant ${tid ?? '(none)'} is not this gateway's tenant`)
    }
  }

  const expiresIn = tokens.expiresIn()
  return {
    claims,
    idToken,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    accessTokenExpiresAt: expiresIn !== undefined ? now + expiresIn : undefined,
    scope: tokens.scope
  }
}

/**
 * Whether a failed call to the IdP means it could not be reached (network, timeout, a 5xx),
 * as opposed to an answer that refuses: the first is an outage to retry, never an attack.
 */
export function idpUnreachable (err: unknown): boolean {
  if (err instanceof client.ResponseBodyError) return err.status >= 500
  const e = err as { name?: string, code?: string, cause?: unknown }
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return true
  // fetch() failing at the network level: "fetch failed" with the socket error as its cause.
  if (err instanceof TypeError && e.cause !== undefined) return true
  const status = (e.cause as { status?: unknown } | undefined)?.status
  if (typeof status === 'number') return status >= 500
  return false
}

function describeFailure (err: unknown): string {
  const e = err as { code?: string, cause?: { code?: string, status?: number }, status?: number }
  return e.cause?.code ?? (e.status !== undefined ? `HTTP ${e.status}` : undefined) ?? (e.cause?.status !== undefined ? `HTTP ${e.cause.status}` : undefined) ?? e.code ?? (err as Error).message
}

export async function fetchUserInfoClaims (oidc: client.Configuration, accessToken: string, sub: string): Promise<Claims> {
  return await client.fetchUserInfo(oidc, accessToken, sub) as Claims
}

/**
 * The IdP's end-session URL, or undefined when it has none. Falls back from `id_token_hint`
 * to `logout_hint` + `client_id` when the URL would pass `maxUrlLength`
 * (OPENID_MAX_LOGOUT_URL_LENGTH; Entra refuses long ones with AADSTS90015).
 */
export function endSessionUrl (
  oidc: client.Configuration,
  opts: { idToken: string | undefined, logoutHint: string | undefined, clientId: string, postLogoutRedirectUri: string, maxUrlLength: number }
): URL | undefined {
  if (oidc.serverMetadata().end_session_endpoint === undefined) return undefined
  if (opts.idToken !== undefined) {
    const url = client.buildEndSessionUrl(oidc, { id_token_hint: opts.idToken, post_logout_redirect_uri: opts.postLogoutRedirectUri })
    if (url.href.length <= opts.maxUrlLength) return url
  }
  const params: Record<string, string> = { client_id: opts.clientId, post_logout_redirect_uri: opts.postLogoutRedirectUri }
  if (opts.logoutHint !== undefined) params.logout_hint = opts.logoutHint
  return client.buildEndSessionUrl(oidc, params)
}
