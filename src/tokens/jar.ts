// The user's tokens and the two ways to get new ones from the refresh token: a refresh of the
// sign-in token (same scopes), and a token for another resource (Graph, SharePoint), since one
// Entra access token targets one resource. Refresh tokens rotate: the newest is always kept.
import * as client from 'openid-client'
import type { Claims } from '../principal/claims.js'
import { credentialFailure } from '../oidc/client-auth.js'
import { GraphError } from '../graph/client.js'
import { isTemplated } from '../oidc/flow.js'
import { TenantIdTokenError, withTenantIdToken } from '../oidc/tenant-tokens.js'

export interface ResourceToken {
  accessToken: string
  /** Epoch seconds. */
  expiresAt: number
  scope: string
}

/**
 * A session's tokens, as sealed into its side entry. Only what a later step uses is kept (the
 * memory store holds one per signed-in user): the refresh token always; the ID token only for
 * sign-out's `id_token_hint`; the sign-in access token only where it is forwarded or handed
 * out (keptTokens). Right after sign-in or a refresh both are present.
 */
export interface TokenSet {
  idToken?: string
  accessToken?: string
  /** Epoch seconds; undefined when the IdP did not say. */
  accessTokenExpiresAt: number | undefined
  refreshToken: string | undefined
  scope: string | undefined
  /** The ID token's `login_hint` claim: Entra's `logout_hint` at sign-out. */
  loginHint?: string
  /** Tokens for other resources, by their sorted scope string. */
  resources?: Record<string, ResourceToken>
}

export type RefreshFailure = 'invalid_grant' | 'interaction_required' | 'no_refresh_token' | 'idp_error' | 'unreachable'

export class RefreshError extends Error {
  readonly reason: RefreshFailure
  readonly idpError: string | undefined
  constructor (reason: RefreshFailure, message: string, idpError?: string) {
    super(message)
    this.name = 'RefreshError'
    this.reason = reason
    this.idpError = idpError
  }
}

export function classifyRefreshError (err: unknown): RefreshError {
  if (err instanceof RefreshError) return err
  if (err instanceof client.ResponseBodyError) {
    const aadsts = /AADSTS\d+/.exec(typeof err.error_description === 'string' ? err.error_description : '')?.[0]
    // invalid_grant: revoked, expired, or the password changed; only a new sign-in helps.
    if (err.error === 'invalid_grant') return new RefreshError('invalid_grant', 'the refresh token was refused (invalid_grant)', aadsts ?? err.error)
    // A claims challenge or Conditional Access wanting the user (MFA, a revoked session): the
    // refresh token cannot satisfy it, only a new interactive sign-in can.
    if (err.error === 'interaction_required' || err.error === 'insufficient_claims' || typeof (err.cause as { claims?: unknown } | undefined)?.claims === 'string') {
      return new RefreshError('interaction_required', `the token endpoint asked for a new sign-in (${err.error})`, aadsts ?? err.error)
    }
    return new RefreshError('idp_error', `the token endpoint answered ${err.error}`, aadsts ?? err.error)
  }
  // The gateway's own credential could not be produced (its file gone or broken): not an outage.
  const credential = credentialFailure(err)
  if (credential !== undefined) return new RefreshError('idp_error', credential.message, 'client_credential')
  return new RefreshError('unreachable', `the token endpoint could not be reached: ${(err as Error).message}`)
}

/**
 * Why the user's session with the IdP is over, when `err` says so: the refresh grant was
 * revoked or expired (`invalid_grant`: AADSTS50173, 70043, 700082, 70008, ...), the token
 * endpoint asked for a new interactive sign-in, or Graph answered a claims challenge
 * (continuous access evaluation). Returns the code to log; undefined for any other failure.
 * No token of the session can help then: the session ends rather than try the refresh token again.
 */
export function revocationOf (err: unknown): string | undefined {
  if (err instanceof RefreshError && (err.reason === 'invalid_grant' || err.reason === 'interaction_required')) return err.idpError ?? err.reason
  if (err instanceof GraphError && err.code === 'insufficient_claims') return 'insufficient_claims'
  return undefined
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000)

/** What later steps need of a token set, by configuration. */
export interface KeepTokens {
  idToken: boolean
  accessToken: boolean
  /** Only sign-out reads it. */
  loginHint: boolean
}

/** What this configuration reads later: the ID token for id_token_hint, the access token where Graph calls reuse it. */
export function keepInSideEntry (config: { useEndSessionEndpoint: boolean, graphScopes: readonly string[] }): KeepTokens {
  return { idToken: config.useEndSessionEndpoint, accessToken: config.graphScopes.length > 0, loginHint: config.useEndSessionEndpoint }
}

/** Whether the sign-in access token is also kept (sealed) in the session: forwarded or handed out per request. */
export function keepInSession (config: { forwardAccessToken: boolean, forwardAuthorizationBearer: boolean, graphScopes: readonly string[] }): boolean {
  return config.forwardAccessToken || config.forwardAuthorizationBearer || config.graphScopes.length > 0
}

/** The part of a token set worth keeping (see TokenSet). */
export function keptTokens (set: TokenSet, keep: KeepTokens): TokenSet {
  // The expiry and scope were read into the session at sign-in/refresh; nothing reads them here.
  const { idToken, accessToken, loginHint, accessTokenExpiresAt: _e, scope: _s, ...rest } = set
  return {
    ...rest,
    accessTokenExpiresAt: undefined,
    scope: undefined,
    ...(keep.idToken && idToken !== undefined ? { idToken } : {}),
    ...(keep.accessToken && accessToken !== undefined ? { accessToken } : {}),
    ...(keep.loginHint && loginHint !== undefined ? { loginHint } : {})
  }
}

/** The ID token's login_hint claim, when it has one. */
export function loginHintOf (claims: Claims): string | undefined {
  return typeof claims.login_hint === 'string' && claims.login_hint !== '' ? claims.login_hint : undefined
}

/**
 * Refreshes the sign-in token with the same scopes; returns the new set and the new ID
 * token's claims. Authorization is re-read from those claims, so a refresh that returns no ID
 * token (Entra always does with `openid`) fails rather than keep roles nobody re-checked.
 */
export async function refreshSignInTokens (oidc: client.Configuration, set: TokenSet, scope: string): Promise<{ set: TokenSet, claims: Claims }> {
  if (set.refreshToken === undefined) throw new RefreshError('no_refresh_token', 'the session has no refresh token')
  let res: Awaited<ReturnType<typeof client.refreshTokenGrant>>
  let tenant: { idToken?: string, claims?: Claims } = {}
  const refreshToken = set.refreshToken
  try {
    ({ result: res, ...tenant } = await withTenantIdToken(isTemplated(oidc), async () => await client.refreshTokenGrant(oidc, refreshToken, { scope })))
  } catch (err) {
    if (err instanceof TenantIdTokenError) throw new RefreshError('idp_error', `the refreshed ID token failed validation (${err.message})`)
    throw classifyRefreshError(err)
  }
  const claims = tenant.claims ?? res.claims() as Claims | undefined
  if (claims === undefined) throw new RefreshError('idp_error', 'the refresh answered no ID token, so authorization could not be re-read')
  const expiresIn = res.expiresIn()
  const loginHint = loginHintOf(claims) ?? set.loginHint
  return {
    set: {
      ...set,
      accessToken: res.access_token,
      accessTokenExpiresAt: expiresIn !== undefined ? nowSeconds() + expiresIn : undefined,
      refreshToken: res.refresh_token ?? set.refreshToken,
      idToken: tenant.idToken ?? res.id_token ?? set.idToken,
      scope: res.scope ?? set.scope,
      ...(loginHint !== undefined ? { loginHint } : {})
    },
    claims
  }
}

/** Holds a token set while one operation may redeem the refresh token for other resources. */
export class TokenJar {
  set: TokenSet
  readonly #oidc: client.Configuration

  constructor (oidc: client.Configuration, set: TokenSet) {
    this.#oidc = oidc
    this.set = set
  }

  /** A token for these scopes of one resource, cached until `minValiditySeconds` before expiry. */
  async forScopes (scopes: readonly string[], minValiditySeconds: number): Promise<ResourceToken> {
    const key = [...scopes].sort().join(' ')
    const cached = this.set.resources?.[key]
    if (cached !== undefined && cached.expiresAt - minValiditySeconds > nowSeconds()) return cached
    if (this.set.refreshToken === undefined) throw new RefreshError('no_refresh_token', 'the session has no refresh token')
    let res: Awaited<ReturnType<typeof client.refreshTokenGrant>>
    try {
      res = await client.refreshTokenGrant(this.#oidc, this.set.refreshToken, { scope: scopes.join(' ') })
    } catch (err) {
      throw classifyRefreshError(err)
    }
    const token: ResourceToken = { accessToken: res.access_token, expiresAt: nowSeconds() + (res.expiresIn() ?? 3600), scope: res.scope ?? scopes.join(' ') }
    this.set = { ...this.set, refreshToken: res.refresh_token ?? this.set.refreshToken, resources: { ...this.set.resources, [key]: token } }
    return token
  }
}
