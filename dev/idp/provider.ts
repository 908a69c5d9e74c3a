/**
 * startIdp: one oidc-provider configured like an Entra tenant, mounted under `/<tenantId>/v2.0`
 * on its own http server, with the token endpoint, the interactions and userinfo routed around
 * it (see dev/idp.ts for what is Entra-like and why).
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose'
import { listen } from '../http.js'
import { appAccessTokenClaims, claimsConfig, pairwiseSub, userClaims } from './claims.js'
import { logoutSource, makeInteractionHandlers, postLogoutSuccessSource, renderError } from './interactions.js'
import { InvalidTarget, OidcProvider, Prompt, basePolicy, type Grant, type OidcClient, type OidcToken, type Provider, type ProviderContext } from './oidc.js'
import { escapeHtml, page, sendHtml, sendJson } from './respond.js'
import { createMemoryStorage } from './storage.js'
import { makeTokenEndpoint } from './token-endpoint.js'
import { parseCertificates, type ClientCredentials } from './client-assertion.js'
import type { Idp, IdpClient, IdpUser, StartIdpOptions } from './types.js'
import { findUserByLogin as findByLogin, findUserByOid as findByOid } from './users.js'
import { makeUserinfoHandler } from './userinfo.js'

export const DEFAULT_TENANT_ID = '5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59'

export async function startIdp (opts: StartIdpOptions): Promise<Idp> {
  const host = opts.host ?? '127.0.0.1'
  const tenantId = opts.tenantId ?? DEFAULT_TENANT_ID
  // Deep copies: tests mutate `idp.users`, which must not leak into DEMO_USERS or other IdPs.
  const users = new Map<string, IdpUser>(opts.users.map((u) => [u.username, structuredClone(u)]))
  let down = false
  const accessTokenTtl = opts.accessTokenTtlSeconds ?? 3600
  if (!Number.isInteger(accessTokenTtl) || accessTokenTtl <= 0) throw new TypeError('accessTokenTtlSeconds must be a positive integer')
  const storage = createMemoryStorage({ keepRotatedRefreshTokens: opts.refreshTokenReuse === 'allow' })

  const server = http.createServer()
  const origin = await listen(server, host, opts.port)
  const organizations = opts.realm === 'organizations'
  const mountPath = organizations ? '/organizations/v2.0' : `/${tenantId}/v2.0`
  const issuer = `${origin}${mountPath}`
  // The issuer oidc-provider signs with and publishes: Entra's template in the organizations realm.
  const providerIssuer = organizations ? `${origin}/{tenantid}/v2.0` : issuer
  /** The `iss` of a user's tokens: their own tenant's in the organizations realm. */
  const issuerOf = (user: IdpUser | undefined): string => organizations ? `${origin}/${user?.tenantId ?? tenantId}/v2.0` : issuer

  const findUserByOid = (oid: unknown): IdpUser | undefined => findByOid(users, oid)
  const findUserByLogin = (login: string): IdpUser | undefined => findByLogin(users, login)

  // RS256 signing key, generated per IdP so no key material is shared or committed.
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const signingJwk = await exportJWK(privateKey)
  signingJwk.kid = await calculateJwkThumbprint(signingJwk)
  signingJwk.alg = 'RS256'
  signingJwk.use = 'sig'

  const apiResource = (clientId: string): string => `api://${clientId}`
  // The credentials of each app registration besides its secret (certificates, federated ones).
  const credentials = new Map<string, ClientCredentials & { secret: string }>(opts.clients.map((c) => [c.client_id, {
    secret: c.client_secret,
    certificates: parseCertificates(c.certificates ?? []),
    federated: structuredClone(c.federatedCredentials ?? []),
  }]))
  const credentialsOf = (clientId: string): ClientCredentials & { secret: string } => {
    const found = credentials.get(clientId)
    if (!found) throw new Error(`no client ${JSON.stringify(clientId)}`)
    return found
  }
  const frontChannel = makeFrontChannel(opts.clients, issuer)

  const provider: Provider = new OidcProvider(providerIssuer, {
    clients: opts.clients.map((c) => clientMetadata(c)),
    jwks: { keys: [signingJwk] },
    // Per-instance storage (the built-in one warns on every start).
    adapter: storage.adapterFactory,
    findAccount: async (_ctx: unknown, accountId: string) => {
      if (!findUserByOid(accountId)) return undefined
      return {
        accountId,
        // Called when each token is issued (sign-in AND refresh), so role changes made in
        // `users` between the two show up, as they do in Entra.
        claims: async () => {
          const user = findUserByOid(accountId)
          return user ? userClaims(user, tenantId) : { sub: accountId }
        },
      }
    },
    claims: claimsConfig(users.values()),
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    subjectTypes: ['pairwise'],
    pairwiseIdentifier: async (_ctx: unknown, accountId: string, client: OidcClient) => pairwiseSub(accountId, client.clientId),
    // Only used to validate a sector_identifier_uri by fetching it; ours are placeholders (see clientMetadata).
    sectorIdentifierUriValidate: () => false,
    // Entra puts scope claims into the ID token.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // Entra matches redirect_uri exactly and wants it sent; do not let clients get away without it.
    allowOmittingSingleRegisteredRedirectUri: false,
    // PKCE optional for confidential clients (as in Entra) but verified whenever a challenge was sent.
    pkce: { required: () => false },
    // Seconds of clock skew accepted for incoming JWTs (id_token_hint); Entra is lenient too.
    clockTolerance: 60,
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      // No `secure`: this IdP is served over plain http on loopback. Lax lets the top-level
      // redirect back into /auth carry the cookies.
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    ttl: {
      AccessToken: accessTokenTtl,
      IdToken: 3600,
      AuthorizationCode: 600,
      RefreshToken: 90 * 24 * 3600,
      Grant: 90 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Interaction: 3600,
    },
    // Entra rule: a refresh token exactly when offline_access was granted (made to survive the
    // OIDC "offline_access needs prompt=consent" rule by restoreOfflineAccess below).
    issueRefreshToken: async (_ctx: unknown, client: OidcClient, code: OidcToken) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    rotateRefreshToken: true,
    extraParams: {
      domain_hint: null,
      [OFFLINE_ACCESS_HOOK]: restoreOfflineAccess,
    },
    // Admin-consented app: every requested scope is granted without a consent screen. Called
    // for each authorization request once a user is signed in.
    loadExistingGrant: async (ctx: ProviderContext) => {
      const { oidc } = ctx
      const accountId = oidc.account?.accountId ?? oidc.session.accountId
      const clientId = oidc.client?.clientId
      if (!accountId || !clientId) return undefined
      const grantId = oidc.result?.consent?.grantId ?? oidc.session.grantIdFor(clientId)
      let grant = grantId ? await provider.Grant.find(grantId) : undefined
      if (grant && grant.accountId !== accountId) grant = undefined
      grant ??= new provider.Grant({ accountId, clientId })
      grantEverythingRequested(grant, oidc)
      await grant.save()
      return grant
    },
    extraTokenClaims: async (_ctx: unknown, token: OidcToken) => {
      const user = token.accountId ? findUserByOid(token.accountId) : undefined
      return user ? appAccessTokenClaims(user, tenantId, token) : undefined
    },
    interactions: {
      policy: interactionPolicyWithSelectAccount(),
      url: async (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      // Entra has none of these; leaving them on would advertise them in discovery.
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      // Replaced by our own /oidc/userinfo (see handleUserinfo): oidc-provider's userinfo
      // refuses every access token that has an audience, i.e. every JWT access token.
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Every access token targets the app's own API, which makes it a JWT (opaque
        // tokens are only for the built-in userinfo endpoint).
        defaultResource: async (_ctx: unknown, client: OidcClient, oneOf?: string[]) =>
          oneOf?.[0] ?? apiResource(client.clientId),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string, client: OidcClient) => {
          if (resource !== apiResource(client.clientId)) throw new InvalidTarget()
          return {
            scope: 'openid profile email offline_access',
            audience: client.clientId, // v2 access tokens for your own API carry aud = client id
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: frontChannel.logoutSource,
        postLogoutSuccessSource,
      },
      // OpenID back-channel logout (Entra has none; other IdPs do), for clients that name a URI.
      backchannelLogout: { enabled: true },
    },
    clientBasedCORS: () => false,
    // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection), and
    // every gateway under test listens on loopback: its back-channel logout goes out plainly.
    fetch: async (url: string | URL, init: RequestInit & { dispatcher?: unknown }) => {
      const { dispatcher: _ssrfGuard, ...rest } = init
      return await globalThis.fetch(url, rest)
    },
    renderError,
  })

  // Discovery: shape it like Entra's document.
  provider.use(async (ctx, next) => {
    await next()
    if (ctx.path === '/.well-known/openid-configuration' && ctx.body && typeof ctx.body === 'object') {
      const body = ctx.body as Record<string, unknown>
      delete body.code_challenge_methods_supported
      delete body.authorization_response_iss_parameter_supported
      delete body.claims_parameter_supported
      // Entra's userinfo lives outside the issuer path too (graph.microsoft.com/oidc/userinfo).
      // Same origin as the other endpoints (which follow the request's Host header).
      body.userinfo_endpoint = new URL('/oidc/userinfo', String(body.token_endpoint)).href
      // Entra's list: the secret either way, or a client assertion (certificate or federated token).
      body.token_endpoint_auth_methods_supported = ['client_secret_post', 'private_key_jwt', 'client_secret_basic']
      // Entra's multi-tenant metadata carries the template literally.
      body.issuer = providerIssuer
      body.tenant_region_scope = 'EU'
      body.cloud_instance_name = 'microsoftonline.com'
    }
  })
  // Entra puts `sid` into ID tokens when the app asks for it (an optional claim); here always,
  // not only for clients with a back-channel logout URI as oidc-provider would.
  provider.Client.prototype.includeSid = () => true
  provider.use(frontChannel.middleware)
  provider.on('backchannel.error', (_ctx: unknown, err: unknown, client: unknown) => {
    console.error('[dev idp] back-channel logout failed', (client as { clientId?: string }).clientId, err)
  })
  provider.on('server_error', (_ctx: unknown, err: unknown) => {
    console.error('[dev idp] server_error', err)
  })

  const tokenEndpoint = makeTokenEndpoint({
    issuer,
    issuerOf: organizations ? issuerOf : undefined,
    tenantId,
    signingKey: privateKey,
    kid: signingJwk.kid,
    accessTokenTtl,
    defaultScopes: opts.defaultScopes ?? {},
    keepRotatedRefreshTokens: opts.refreshTokenReuse === 'allow',
    findUserByOid,
    isDown: () => down,
    clientCredentials: (clientId) => credentials.get(clientId),
  })
  provider.use(tokenEndpoint.middleware)
  provider.on('authorization_code.saved', (code) => tokenEndpoint.onCodeSaved(code as { jti?: string }))

  const providerCallback = provider.callback()
  const interactions = makeInteractionHandlers(provider, findUserByLogin, () => [...users.values()])
  const handleUserinfo = makeUserinfoHandler({
    provider,
    issuer,
    tenantId,
    publicKey,
    findUserByOid,
  })

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? '/'
    if (req.method === 'POST' && rawUrl.split('?')[0] === `${mountPath}/token`) {
      // Counted (and the body read) even while down; see makeTokenEndpoint.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = rawUrl
      req.url = rawUrl.slice(mountPath.length)
      await tokenEndpoint.handle(req, res, providerCallback)
      return
    }
    if (down) {
      sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'The identity provider is down (simulated).' }, { 'Retry-After': '1' })
      return
    }
    const rest = rawUrl.startsWith(mountPath) ? rawUrl.slice(mountPath.length) : undefined
    if (rest !== undefined && (rest === '' || rest.startsWith('/') || rest.startsWith('?'))) {
      // Mount like express's app.use(mountPath, ...): oidc-provider derives the public
      // endpoint URLs from the prefix of `originalUrl` that precedes `url`.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = rawUrl
      req.url = rest.startsWith('/') ? rest : `/${rest}`
      await providerCallback(req, res)
      return
    }
    const pathname = new URL(rawUrl, origin).pathname
    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(pathname)
    if (interaction?.[1]) {
      await interactions(req, res, interaction[1])
      return
    }
    if (pathname === '/oidc/userinfo') {
      await handleUserinfo(req, res)
      return
    }
    sendJson(res, 404, { error: 'not_found', issuer })
  }
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    route(req, res).catch((err: unknown) => {
      console.error('[dev idp] unhandled error', err)
      if (!res.headersSent) sendHtml(res, 500, page('Server error', '<p>Unexpected error in the development IdP.</p>'))
      else res.destroy()
    })
  })

  return {
    issuer,
    origin,
    tenantId,
    provider,
    users,
    setDown (value: boolean) {
      down = value
    },
    tokenRequests: tokenEndpoint.counts,
    tokenAuthMethods: tokenEndpoint.authMethods,
    addClientCertificate (clientId: string, certificatePem: string) {
      credentialsOf(clientId).certificates.push(...parseCertificates([certificatePem]))
    },
    addFederatedCredential (clientId, credential) {
      credentialsOf(clientId).federated.push(structuredClone(credential))
    },
    async signJwt (claims: Record<string, unknown>) {
      return await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingJwk.kid, typ: 'JWT' }).sign(privateKey)
    },
    setSlow (ms: number) {
      tokenEndpoint.setDelay(ms)
    },
    holdTokenRequests (grantType = 'refresh_token') {
      return tokenEndpoint.hold(grantType)
    },
    revokeRefreshTokens (username: string, revokeOpts: { endSessions?: boolean } = {}) {
      const user = users.get(username) ?? findUserByLogin(username)
      if (!user) throw new Error(`revokeRefreshTokens: no user ${JSON.stringify(username)}`)
      const revoked = storage.destroyWhere('RefreshToken', (payload) => payload.accountId === user.oid)
      tokenEndpoint.markRevoked(revoked)
      if (revokeOpts.endSessions) storage.destroyWhere('Session', (payload) => payload.accountId === user.oid)
      return revoked.length
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        tokenEndpoint.cancelDelays()
        server.close((err) => (err ? reject(err) : resolve()))
        // Keep-alive sockets (fetch's pool) would otherwise hold close() and tap open.
        server.closeAllConnections()
      }),
  }
}

// ---------------------------------------------------------------------------------------------
// Provider configuration helpers
// ---------------------------------------------------------------------------------------------

/** Entra accepts prompt=select_account; oidc-provider only knows the prompts in its policy. */
function interactionPolicyWithSelectAccount (): unknown[] {
  const policy = basePolicy()
  policy.add(new Prompt({ name: 'select_account', requestable: true }), 0)
  return policy
}

/**
 * Front-channel logout, which oidc-provider 9 no longer implements: the logout confirmation
 * page (which sees the IdP session) notes the front-channel URL of every client signed in with
 * it, keyed by the form's xsrf value; when the logout is confirmed, the answer becomes a
 * "signing out" page that frames each URL (with `iss` and that client's `sid`) and links on to
 * where the IdP would have redirected. A browser loads the frames; a scripted one reads them.
 */
function makeFrontChannel (clients: IdpClient[], issuer: string): {
  logoutSource: (ctx: ProviderContext, form: string) => Promise<void>;
  middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>;
} {
  const uris = new Map(clients.flatMap((c) => c.frontchannel_logout_uri ? [[c.client_id, c.frontchannel_logout_uri] as const] : []))
  const pending = new Map<string, string[]>()
  return {
    async logoutSource (ctx, form) {
      const session = ctx.oidc.session
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(form)?.[1]
      const frames = Object.keys(session.authorizations ?? {}).flatMap((clientId) => {
        const uri = uris.get(clientId)
        const sid = session.sidFor(clientId)
        if (!uri || !sid) return []
        const url = new URL(uri)
        url.searchParams.set('iss', issuer)
        url.searchParams.set('sid', sid)
        return [url.href]
      })
      if (xsrf && frames.length) {
        if (pending.size > 1000) pending.clear()
        pending.set(xsrf, frames)
      }
      await logoutSource(ctx, form)
    },
    async middleware (ctx, next) {
      await next()
      if (ctx.oidc?.route !== 'end_session_confirm') return
      const xsrf = ctx.oidc.body?.xsrf
      const frames = typeof xsrf === 'string' ? pending.get(xsrf) : undefined
      if (!frames || typeof xsrf !== 'string') return
      pending.delete(xsrf)
      const next_ = ctx.response.get('location')
      ctx.remove('location')
      ctx.status = 200
      ctx.type = 'html'
      ctx.body = page('Signing out', `<h1 id="signing-out">Signing you out of every application</h1>${frames.map((f) => `<iframe class="front-channel-logout" hidden src="${escapeHtml(f)}"></iframe>`).join('')}` +
        (next_ ? `<p><a id="continue" href="${escapeHtml(next_)}">Continue</a></p>` : '<p id="signed-out">You signed out of your account.</p>'))
    },
  }
}

function clientMetadata (c: IdpClient): Record<string, unknown> {
  const hosts = new Set(c.redirect_uris.map((u) => new URL(u).host))
  return {
    ...(c.backchannel_logout_uri ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true } : {}),
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    subject_type: 'pairwise',
    // Pairwise clients whose redirect URIs span several hosts must name a sector. Ours is a
    // placeholder: it is never fetched (sectorIdentifierUriValidate) and pairwiseIdentifier
    // keys on the client id, as Entra does.
    ...(hosts.size > 1 ? { sector_identifier_uri: `https://sector.invalid/${encodeURIComponent(c.client_id)}` } : {}),
  }
}

/**
 * Name of a pseudo authorization parameter whose validator is really a hook: oidc-provider runs
 * every extraParams validator on every authorization request, right after it has removed
 * `offline_access` from the scope because `prompt=consent` is absent (OIDC Core 11). That is the
 * only place to put it back before the code is minted, which is what makes refresh tokens
 * appear whenever offline_access is requested, as with Entra.
 */
const OFFLINE_ACCESS_HOOK = 'x_dev_idp_offline_access'

async function restoreOfflineAccess (ctx: ProviderContext, _value: unknown, client: OidcClient): Promise<void> {
  const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query.scope
  if (typeof raw !== 'string' || !raw.split(' ').includes('offline_access')) return
  if (!client.grantTypeAllowed('refresh_token')) return
  const scopes = new Set(ctx.oidc.params.scope?.split(' ') ?? [])
  if (scopes.has('offline_access')) return
  scopes.add('offline_access')
  ctx.oidc.params.scope = [...scopes].join(' ')
}

function grantEverythingRequested (grant: Grant, oidc: ProviderContext['oidc']): void {
  const oidcScope = [...oidc.requestParamOIDCScopes].join(' ')
  if (oidcScope) grant.addOIDCScope(oidcScope)
  for (const [indicator, server] of Object.entries(oidc.resourceServers)) {
    const scope = [...oidc.requestParamScopes].filter((s) => server.scopes.has(s)).join(' ')
    if (scope) grant.addResourceScope(indicator, scope)
  }
}
