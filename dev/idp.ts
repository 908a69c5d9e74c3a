/**
 * A real OpenID Provider (panva's oidc-provider) shaped like Microsoft Entra ID, for the
 * gateway's tests and `npm run demo`.
 *
 * What is Entra-like here, and why:
 * - issuer `http://host:port/<tenantId>/v2.0` with the provider mounted under that path, so the
 *   gateway is configured exactly as against login.microsoftonline.com;
 * - discovery has no `code_challenge_methods_supported` (openid-client's supportsPKCE() is then
 *   false, as with Entra) but S256 PKCE is still enforced when a client sends it;
 * - claims oid/tid/roles/groups/ver go into the ID token (no userinfo round trip needed);
 *   `sub` is pairwise per application, so `sub` != `oid`, exactly like Entra;
 * - a refresh token whenever `offline_access` is requested (no `prompt=consent` needed),
 *   rotated on every use;
 * - access tokens are RS256 JWTs (aud = client id, `scp`, `roles`, `oid`, `tid`);
 * - one access token per resource: scopes named by URL (`https://graph.microsoft.com/User.Read`)
 *   get an access token for THAT resource, at sign-in and on refresh (next section);
 * - `login_hint` claim in ID tokens (an opaque value, usable as `logout_hint`);
 * - no consent screen: an app with admin consent never shows one.
 *
 * Access tokens for other resources (Graph, SharePoint, any API), the way Entra does it:
 * - A scope that is an absolute http(s) URL names a resource and a permission: the resource is
 *   the URL without its last path segment, the permission is that segment
 *   (`https://graph.microsoft.com/User.Read` -> `https://graph.microsoft.com` + `User.Read`,
 *   `http://127.0.0.1:4567/.default`, `https://analysis.windows.net/powerbi/api/Report.Read.All`).
 * - A token request (authorization_code or refresh_token grant) whose `scope` names such scopes
 *   gets an access token for that resource: RS256 JWT, `typ: JWT`, signed with this IdP's key,
 *   `aud` = the resource, `scp` = the permission names, `oid`, `tid`, `sub`, `name`,
 *   `preferred_username`, `azp`, `ver: 2.0`, `iat`/`nbf`/`exp` (accessTokenTtlSeconds). No
 *   `roles`: in Entra they are the app roles of the RESOURCE, which this IdP has none of (so do
 *   not read your app's roles from a Graph token). `/.default` gets `scp` from
 *   `StartIdpOptions.defaultScopes[resource]` (default `user_impersonation`). The ID token and
 *   the refresh token are issued as usual; the response's `scope` lists the resource's scopes
 *   (full URLs) and the OIDC ones.
 * - Scopes of two resources in one token request: 400 `invalid_scope`, `AADSTS70011` ("not
 *   compatible with each other"); so is `/.default` next to another scope of the same resource.
 *   openid/profile/email/offline_access mix with any one resource.
 * - At sign-in (/authorize) URL scopes are accepted, of several resources even (Entra asks
 *   consent for all of them there). Redeeming the code without a URL scope in the token request
 *   targets the resource of the FIRST URL scope of the authorization request (Microsoft's
 *   documented rule); with URL scopes in the token request, those decide.
 * - A refresh token is not tied to a resource: `grant_type=refresh_token` with the scopes of any
 *   resource works. A refresh without URL scopes targets what the sign-in targeted (the app's
 *   own token, aud = client id, when the sign-in named no resource).
 * - No permission model: every scope of every resource is granted.
 * How: oidc-provider does the protocol (client authentication, code, PKCE, refresh-token
 * rotation, ID token) and never sees the URL scopes as grantable; the http wrapper in front of
 * the token endpoint (makeTokenEndpoint) checks the scopes, drops them from a refresh request
 * before the provider reads it (it would refuse scopes the refresh token was not issued with)
 * and, in a Koa middleware after the grant ran, replaces `access_token` with a JWT minted with
 * jose for the resource. A code learns its resource when oidc-provider saves it (the
 * `authorization_code.saved` event, reading the request's scope through `Provider.ctx`).
 *
 * Test knobs on the returned Idp: `setDown`, `setSlow` (token endpoint latency), `holdTokenRequests`
 * (token requests wait until the test releases them),
 * `revokeRefreshTokens` (invalid_grant on the next refresh, as after a password reset or
 * revokeSignInSessions), `tokenRequests` (token-endpoint calls per grant type).
 *
 * Known differences from Entra are listed at the end of this file.
 */
import { randomBytes, randomUUID, createHash } from 'node:crypto'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { listen, readBodyBuffer } from './http.js'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify } from 'jose'
// oidc-provider 9 ships no TypeScript declarations (and @types/oidc-provider describes v8 and is
// not installed): the import is untyped and the subset we rely on is typed below.
// @ts-ignore -- untyped module; `ts-ignore` rather than `ts-expect-error` so that adding types later does not break the build
import OidcProvider, { errors as untypedErrors, interactionPolicy as untypedInteractionPolicy } from 'oidc-provider'

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface IdpUser {
  /** Login name typed into the form (matched case-insensitively, as is `preferredUsername`). */
  username: string;
  password: string;
  /** Entra object id: the stable user key, and the oidc-provider accountId. */
  oid: string;
  name: string;
  email?: string;
  preferredUsername: string;
  /** App roles assigned for this app (`roles` claim); omitted from tokens when undefined/empty. */
  roles?: string[];
  /** Group object ids (`groups` claim); omitted when undefined. */
  groups?: string[];
  /** Merged over the standard claims, e.g. `_claim_names`/`_claim_sources` (group overage), `wids`. */
  extraClaims?: Record<string, unknown>;
}

export interface IdpClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
}

export interface StartIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Default DEFAULT_TENANT_ID. */
  tenantId?: string;
  clients: IdpClient[];
  users: IdpUser[];
  /** Lifetime of every access token (the app's own and other resources'), seconds. Default 3600 (Entra: 60-90 minutes). */
  accessTokenTtlSeconds?: number;
  /**
   * Reuse of a refresh token that was already rotated (used once):
   * - `'revoke-grant'` (default; oidc-provider's replay detection): invalid_grant, and the whole
   *   grant is revoked, including the newest refresh token.
   * - `'allow'` (Entra): every refresh token stays valid until it expires or is revoked; each use
   *   still returns a new one.
   */
  refreshTokenReuse?: 'revoke-grant' | 'allow';
  /**
   * `scp` of a token for `<resource>/.default` (Entra: the statically configured permissions),
   * keyed by resource, e.g. `{ 'https://graph.microsoft.com': ['User.Read', 'GroupMember.Read.All'] }`.
   * Default `['user_impersonation']`.
   */
  defaultScopes?: Record<string, string[]>;
}

/** Token-endpoint requests received, by `grant_type` (unknown grant types get their own key). */
export interface TokenRequestCounts {
  authorization_code: number;
  refresh_token: number;
  [grantType: string]: number;
}

/** Longest `setSlow` delay accepted (ms). */
export const MAX_TOKEN_DELAY_MS = 60_000

export interface Idp {
  /** `http://host:port/<tenantId>/v2.0`, no trailing slash. */
  issuer: string;
  /** `http://host:port`. */
  origin: string;
  tenantId: string;
  /** The oidc-provider instance (typed subset; cast if you need more). */
  provider: Provider;
  /**
   * Users keyed by `username` (a deep copy of `opts.users`). Mutable: change roles/groups/
   * extraClaims here between sign-in and refresh; tokens read it at issue time.
   */
  users: Map<string, IdpUser>;
  /** While down, every request (discovery, token, JWKS, login, ...) gets 503. */
  setDown(down: boolean): void;
  /**
   * Token-endpoint POSTs received per grant_type, counted on arrival whatever the outcome
   * (also while down or slow). A live object: read it, or reset a key to 0.
   */
  tokenRequests: TokenRequestCounts;
  /**
   * Delays every token-endpoint response by `ms` (0 turns it off; clamped to 0..MAX_TOKEN_DELAY_MS).
   * Other endpoints are not delayed. close() cuts delayed requests short.
   */
  setSlow(ms: number): void;
  /**
   * Holds every token-endpoint request of this grant type (counted on arrival, as always) until
   * `release()`: a refresh as slow as a test needs, without timers. close() cuts held requests short.
   */
  holdTokenRequests(grantType?: string): TokenHold;
  /**
   * Revokes every refresh token issued so far to this user (by `username`, or login name):
   * each later use gets 400 invalid_grant (`AADSTS50173`), as after a password reset or
   * revokeSignInSessions. Access tokens stay valid until they expire, as in Entra. A later
   * sign-in gets working refresh tokens again. `endSessions: true` also ends the user's IdP
   * sessions (the next sign-in shows the form). Returns how many refresh tokens were revoked.
   */
  revokeRefreshTokens(username: string, opts?: { endSessions?: boolean }): number;
  /**
   * Signs any claims with the IdP's own key (RS256, its kid). For tokens Entra issues but this
   * IdP cannot be made to (another tenant, long expired, another audience) in tests.
   */
  signJwt(claims: Record<string, unknown>): Promise<string>;
  /** Closes the server and every open connection. */
  close(): Promise<void>;
}

export const DEFAULT_TENANT_ID = '5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59'

/** Every value is deep-frozen: copy before changing (startIdp copies for you). */
export const DEMO_USERS: IdpUser[] = deepFreeze([
  {
    username: 'alice',
    password: 'alice',
    oid: '3b8e6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
    name: 'Alice Zoë Ångström',
    email: 'alice@contoso.example',
    preferredUsername: 'alice@contoso.example',
    roles: ['ChatUser'],
    groups: ['6a7b8c9d-0e1f-4a2b-9c3d-4e5f6a7b8c9d', 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f'],
  },
  {
    username: 'bob',
    password: 'bob',
    oid: '9d8c7b6a-5f4e-4d3c-b2a1-0f9e8d7c6b5a',
    name: 'Bob Æsir Øvergård',
    email: 'bob@contoso.example',
    preferredUsername: 'bob@contoso.example',
  },
])

/**
 * The typed subset of oidc-provider's Provider used here and likely useful to tests.
 * (See the import comment: the package has no declarations.)
 */
export interface Provider {
  readonly issuer: string;
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  use(middleware: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>): Provider;
  on(event: string, listener: (...args: unknown[]) => void): Provider;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: GrantClass;
  RefreshToken: { find(value: string): Promise<{ jti: string; accountId: string; clientId: string; grantId: string; consumed?: number } | undefined> };
}

export interface InteractionDetails {
  uid: string;
  grantId?: string;
  returnTo: string;
  params: Record<string, unknown> & { client_id?: string; login_hint?: string; scope?: string };
  prompt: {
    name: string;
    reasons: string[];
    details: {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
  };
  session?: { accountId?: string; uid?: string };
}

interface Grant {
  accountId: string;
  clientId: string;
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface GrantClass {
  new (init: { accountId: string; clientId: string }): Grant;
  find(id: string): Promise<Grant | undefined>;
}

/** The parts of oidc-provider's Koa context that the configuration below touches. */
interface ProviderContext {
  req: IncomingMessage;
  method: string;
  path: string;
  origin: string;
  query: Record<string, string | string[] | undefined>;
  body: unknown;
  type: string;
  status: number;
  oidc: {
    route?: string;
    body?: Record<string, unknown>;
    params: { scope?: string } & Record<string, unknown>;
    client?: OidcClient;
    account?: { accountId: string };
    session: { accountId?: string; grantIdFor(clientId: string): string | undefined };
    result?: { consent?: { grantId?: string } };
    requestParamOIDCScopes: Set<string>;
    requestParamScopes: Set<string>;
    resourceServers: Record<string, { scopes: Set<string> }>;
    /** Set on the token endpoint once the grant ran. */
    entities?: { AccessToken?: { accountId?: string; clientId?: string; grantId?: string } };
  };
}
interface OidcClient {
  clientId: string;
  grantTypeAllowed(type: string): boolean;
}
interface OidcToken {
  accountId?: string;
  clientId?: string;
  grantId?: string;
  scope?: string;
  scopes: Set<string>;
}
interface KoaLikeError extends Error {
  error?: string;
  error_description?: string;
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

/**
 * Which claims each scope releases. oidc-provider only emits configured claims, so every claim
 * the gateway may read must be listed; Entra's directory claims ride on `openid` because Entra
 * sends them regardless of scope. `_claim_names`/`_claim_sources` need no entry: oidc-provider
 * passes them through for any released claim they name (e.g. `groups`).
 */
const ENTRA_OPENID_CLAIMS = [
  'sub', 'oid', 'tid', 'ver', 'roles', 'groups', 'wids', 'hasgroups', 'idp', 'upn',
  'unique_name', 'login_hint', 'acct', 'xms_pdl', 'xms_tpl',
]
const PROFILE_CLAIMS = ['name', 'preferred_username', 'given_name', 'family_name']
const EMAIL_CLAIMS = ['email']

function claimsConfig (users: Iterable<IdpUser>): Record<string, string[]> {
  const known = new Set([...ENTRA_OPENID_CLAIMS, ...PROFILE_CLAIMS, ...EMAIL_CLAIMS])
  const extra = new Set<string>()
  for (const user of users) {
    for (const key of Object.keys(user.extraClaims ?? {})) {
      // Claims oidc-provider sets itself must not be declared as user claims.
      if (!known.has(key) && !key.startsWith('_claim_') && !RESERVED_JWT_CLAIMS.has(key)) extra.add(key)
    }
  }
  return {
    openid: [...ENTRA_OPENID_CLAIMS, ...extra],
    profile: PROFILE_CLAIMS,
    email: EMAIL_CLAIMS,
  }
}
const RESERVED_JWT_CLAIMS = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 'auth_time', 'acr', 'amr', 'sid'])

/** All claims of a user, before scope filtering. `sub` is the accountId (oid): oidc-provider makes it pairwise. */
function userClaims (user: IdpUser, tenantId: string): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    sub: user.oid,
    oid: user.oid,
    tid: tenantId,
    ver: '2.0',
    name: user.name,
    preferred_username: user.preferredUsername,
    email: user.email,
    // Entra omits `roles` when none are assigned, rather than sending [].
    roles: user.roles?.length ? [...user.roles] : undefined,
    groups: user.groups ? [...user.groups] : undefined,
    // Entra's optional ID-token claim: an opaque value meant for `logout_hint`.
    login_hint: loginHint(user, tenantId),
    ...structuredClone(user.extraClaims ?? {}),
  }
  for (const [key, value] of Object.entries(claims)) if (value === undefined) delete claims[key]
  return claims
}

/** Opaque and stable per user, like Entra's (whose content is undocumented). */
function loginHint (user: IdpUser, tenantId: string): string {
  return 'O.' + Buffer.from(JSON.stringify({ oid: user.oid, tid: tenantId, upn: user.preferredUsername })).toString('base64url')
}

/** Entra's `sub` is per application; a stable hash of (client, oid) gives the same property. */
function pairwiseSub (accountId: string, clientId: string): string {
  return createHash('sha256').update(`${clientId}\0${accountId}`).digest('base64url')
}

// ---------------------------------------------------------------------------------------------
// startIdp
// ---------------------------------------------------------------------------------------------

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
  const mountPath = `/${tenantId}/v2.0`
  const issuer = `${origin}${mountPath}`

  const findUserByOid = (oid: unknown): IdpUser | undefined => {
    for (const user of users.values()) if (user.oid === oid) return user
    return undefined
  }
  const findUserByLogin = (login: string): IdpUser | undefined => {
    const wanted = login.trim().toLowerCase()
    for (const user of users.values()) {
      if (user.username.toLowerCase() === wanted || user.preferredUsername.toLowerCase() === wanted) return user
    }
    return undefined
  }

  // RS256 signing key, generated per IdP so no key material is shared or committed.
  const { privateKey, publicKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const signingJwk = await exportJWK(privateKey)
  signingJwk.kid = await calculateJwkThumbprint(signingJwk)
  signingJwk.alg = 'RS256'
  signingJwk.use = 'sig'

  const apiResource = (clientId: string): string => `api://${clientId}`

  const provider: Provider = new OidcProvider(issuer, {
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
      // Entra access-token claims, so a gateway configured to read roles from the access token works.
      const user = token.accountId ? findUserByOid(token.accountId) : undefined
      if (!user) return undefined
      const claims = userClaims(user, tenantId)
      delete claims.sub // the JWT format sets (pairwise) sub itself
      delete claims.login_hint // ID tokens only, as in Entra
      // JWT access tokens are not stored by oidc-provider, so revocation is only visible
      // through their grant. Its id rides in `aio`, Entra's opaque "ignore me" claim.
      return { ...claims, scp: token.scope ?? '', azp: token.clientId, aio: token.grantId }
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
        logoutSource,
        postLogoutSuccessSource,
      },
    },
    clientBasedCORS: () => false,
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
      body.tenant_region_scope = 'EU'
      body.cloud_instance_name = 'microsoftonline.com'
    }
  })
  provider.on('server_error', (_ctx: unknown, err: unknown) => {
    console.error('[dev idp] server_error', err)
  })

  const tokenEndpoint = makeTokenEndpoint({
    issuer,
    tenantId,
    signingKey: privateKey,
    kid: signingJwk.kid,
    accessTokenTtl,
    defaultScopes: opts.defaultScopes ?? {},
    keepRotatedRefreshTokens: opts.refreshTokenReuse === 'allow',
    findUserByOid,
    isDown: () => down,
  })
  provider.use(tokenEndpoint.middleware)
  provider.on('authorization_code.saved', (code) => tokenEndpoint.onCodeSaved(code as { jti?: string }))

  const providerCallback = provider.callback()
  const interactions = makeInteractionHandlers(provider, findUserByLogin)
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

const { Prompt, base: basePolicy } = untypedInteractionPolicy as {
  Prompt: new (opts: { name: string; requestable: boolean }) => unknown;
  base: () => unknown[] & { add(prompt: unknown, index?: number): void };
}

const { InvalidTarget } = untypedErrors as { InvalidTarget: new (description?: string) => Error }

/** Entra accepts prompt=select_account; oidc-provider only knows the prompts in its policy. */
function interactionPolicyWithSelectAccount (): unknown[] {
  const policy = basePolicy()
  policy.add(new Prompt({ name: 'select_account', requestable: true }), 0)
  return policy
}

function clientMetadata (c: IdpClient): Record<string, unknown> {
  const hosts = new Set(c.redirect_uris.map((u) => new URL(u).host))
  return {
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

// ---------------------------------------------------------------------------------------------
// Token endpoint: one resource per access token (Entra), counters, latency
// ---------------------------------------------------------------------------------------------

/** Scopes that mix with the scopes of any one resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access'])

/** oidc-provider's own limit for request bodies. */
const TOKEN_BODY_LIMIT = 56 * 1024
/** Authorization codes live 10 minutes (ttl.AuthorizationCode). */
const CODE_TTL_MS = 600_000
/** Bound on remembered code/refresh-token targets (a long demo must not grow without end). */
const MAX_REMEMBERED = 10_000

interface ResourceScope {
  /** As requested: `https://graph.microsoft.com/User.Read`. */
  value: string;
  /** `https://graph.microsoft.com`: the URL without its last path segment. */
  resource: string;
  /** `User.Read`: the last path segment. */
  name: string;
}

/** An Entra resource scope, or undefined for anything else (openid, User.Read, api://x/y, ...). */
function parseResourceScope (value: string): ResourceScope | undefined {
  if (!/^https?:\/\//i.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.search || url.hash || url.username || url.password) return undefined
  const slash = url.pathname.lastIndexOf('/')
  const name = url.pathname.slice(slash + 1)
  if (!name) return undefined
  return { value, resource: url.origin + url.pathname.slice(0, slash), name }
}

function resourceScopesOf (scope: unknown): ResourceScope[] {
  if (typeof scope !== 'string') return []
  const out: ResourceScope[] = []
  for (const value of scope.split(/\s+/)) {
    const parsed = value ? parseResourceScope(value) : undefined
    if (parsed) out.push(parsed)
  }
  return out
}

/** Entra's rules for the scopes of one token request: the AADSTS70011 text, or undefined. */
function resourceScopeProblem (requested: ResourceScope[], scope: string): string | undefined {
  if (new Set(requested.map((s) => s.resource)).size > 1) {
    return `AADSTS70011: The provided value for the input parameter 'scope' is not valid. One or more scopes in '${scope}' are not compatible with each other.`
  }
  const names = new Set(requested.map((s) => s.name))
  if (names.has('.default') && names.size > 1) {
    return `AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid: /.default cannot be combined with other scopes of the same resource.`
  }
  return undefined
}

/** Entra's error body (`error_codes`, trace ids, and the same details in error_description). */
function entraError (error: string, code: number, description: string): Record<string, unknown> {
  const traceId = randomUUID()
  const correlationId = randomUUID()
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  return {
    error,
    error_description: `${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  }
}

interface TokenRequestInfo {
  grantType: string;
  code?: string;
  refreshToken?: string;
  /** The resource this response's access token is for; undefined: the app's own token. */
  target?: ResourceScope[];
  /** What a refresh without URL scopes, with the refresh token of this response, targets. */
  sticky?: ResourceScope[];
}

export interface TokenHold {
  /** Resolves once `n` requests (in all) have been held. */
  arrivals(n: number): Promise<void>;
  /** Lets every held request (and later ones) through. */
  release(): void;
}

interface TokenEndpoint {
  counts: TokenRequestCounts;
  /** Reads the request, answers what oidc-provider must not see, then hands a copy to it. */
  handle(req: IncomingMessage, res: ServerResponse, providerCallback: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<void>;
  /** provider.use(): rewrites token responses after the grant ran. */
  middleware(ctx: ProviderContext, next: () => Promise<void>): Promise<void>;
  /** provider.on('authorization_code.saved'): remembers the resource a code was asked for. */
  onCodeSaved(code: { jti?: string }): void;
  setDelay(ms: number): void;
  hold(grantType: string): TokenHold;
  cancelDelays(): void;
  markRevoked(refreshTokens: string[]): void;
}

function makeTokenEndpoint (deps: {
  issuer: string;
  tenantId: string;
  signingKey: CryptoKey;
  kid: string;
  accessTokenTtl: number;
  defaultScopes: Record<string, string[]>;
  keepRotatedRefreshTokens: boolean;
  findUserByOid: (oid: unknown) => IdpUser | undefined;
  isDown: () => boolean;
}): TokenEndpoint {
  const counts: TokenRequestCounts = { authorization_code: 0, refresh_token: 0 }
  let delayMs = 0
  const sleepers = new Set<() => void>()
  let held: { grantType: string; gate: Promise<void>; arrive: () => void } | undefined
  // Keyed by the request object handed to oidc-provider (Koa's ctx.req).
  const pending = new WeakMap<IncomingMessage, TokenRequestInfo>()
  const codeTargets = new Map<string, { scopes: ResourceScope[]; expiresAt: number }>()
  const refreshTargets = new Map<string, ResourceScope[]>()
  const revoked = new Set<string>()

  const remember = <V>(map: Map<string, V>, key: string, value: V): void => {
    map.delete(key)
    map.set(key, value)
    if (map.size > MAX_REMEMBERED) {
      const oldest = map.keys().next()
      if (!oldest.done) map.delete(oldest.value)
    }
  }

  const pause = (ms: number): Promise<void> => {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const cancel = (): void => {
        clearTimeout(timer)
        sleepers.delete(cancel)
        reject(new Error('the IdP was closed'))
      }
      const timer = setTimeout(() => {
        sleepers.delete(cancel)
        resolve()
      }, ms)
      sleepers.add(cancel)
    })
  }

  /** Waits for `gate`, or rejects when the IdP closes. */
  const waitFor = (gate: Promise<void>): Promise<void> => new Promise((resolve, reject) => {
    const cancel = (): void => {
      sleepers.delete(cancel)
      reject(new Error('the IdP was closed'))
    }
    sleepers.add(cancel)
    gate.then(() => {
      sleepers.delete(cancel)
      resolve()
    }, reject)
  })

  const scpFor = (target: ResourceScope[]): string[] => {
    const names = [...new Set(target.map((s) => s.name))]
    if (!names.includes('.default')) return names
    const resource = target[0]!.resource
    return deps.defaultScopes[resource] ?? deps.defaultScopes[`${resource}/`] ?? ['user_impersonation']
  }

  const mint = async (target: ResourceScope[], issued: { accountId: string; clientId: string; grantId?: string }): Promise<string> => {
    const user = deps.findUserByOid(issued.accountId)
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = {
      aio: issued.grantId, // as in the app's tokens: the grant, for revocation checks
      azp: issued.clientId,
      azpacr: '1',
      name: user?.name,
      oid: issued.accountId,
      preferred_username: user?.preferredUsername,
      scp: scpFor(target).join(' '),
      sub: pairwiseSub(issued.accountId, issued.clientId),
      tid: deps.tenantId,
      uti: randomBytes(16).toString('base64url'),
      ver: '2.0',
    }
    for (const [key, value] of Object.entries(claims)) if (value === undefined) delete claims[key]
    return await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: deps.kid })
      .setIssuer(deps.issuer)
      .setAudience(target[0]!.resource)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + deps.accessTokenTtl)
      .sign(deps.signingKey)
  }

  return {
    counts,

    async handle (req, res, providerCallback) {
      let body: Buffer
      try {
        body = await readBodyBuffer(req, TOKEN_BODY_LIMIT)
      } catch (err) {
        if (!res.headersSent) sendJson(res, 400, { error: 'invalid_request', error_description: describeError(err) })
        return
      }
      const form = /^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')
        ? new URLSearchParams(body.toString('utf8'))
        : undefined
      const grantType = form?.get('grant_type') ?? ''
      if (grantType) counts[grantType] = (counts[grantType] ?? 0) + 1
      if (deps.isDown()) {
        sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'The identity provider is down (simulated).' }, { 'Retry-After': '1' })
        return
      }
      try {
        await pause(delayMs)
        const hold = held
        if (hold && hold.grantType === grantType) {
          hold.arrive()
          await waitFor(hold.gate)
        }
      } catch {
        res.destroy()
        return
      }

      const info: TokenRequestInfo = { grantType }
      let forward = body
      if (form && (grantType === 'authorization_code' || grantType === 'refresh_token')) {
        const scope = form.get('scope') ?? ''
        const requested = resourceScopesOf(scope)
        let stored: ResourceScope[] | undefined
        if (grantType === 'authorization_code') {
          info.code = form.get('code') ?? undefined
          const entry = info.code === undefined ? undefined : codeTargets.get(info.code)
          stored = entry && entry.expiresAt > Date.now() ? entry.scopes : undefined
        } else {
          info.refreshToken = form.get('refresh_token') ?? undefined
          stored = info.refreshToken === undefined ? undefined : refreshTargets.get(info.refreshToken)
        }
        const target = requested.length ? requested : stored
        const problem = target && resourceScopeProblem(target, requested.length ? scope : target.map((s) => s.value).join(' '))
        if (problem) {
          sendJson(res, 400, entraError('invalid_scope', 70011, problem))
          return
        }
        info.target = target
        info.sticky = grantType === 'authorization_code' ? target : stored
        if (grantType === 'refresh_token' && requested.length) {
          // oidc-provider refuses scopes the refresh token was not issued with. Without `scope`
          // it refreshes with the token's own scopes: the ID token is the same as at sign-in.
          form.delete('scope')
          forward = Buffer.from(form.toString())
        }
      }
      const forwarded = replayRequest(req, forward)
      pending.set(forwarded, info)
      await providerCallback(forwarded, res)
    },

    async middleware (ctx, next) {
      await next()
      const info = pending.get(ctx.req)
      if (!info) return
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body as Record<string, unknown> : undefined
      if (!body) return
      if (ctx.status === 200 && typeof body.access_token === 'string') {
        if (info.code !== undefined) codeTargets.delete(info.code)
        if (info.refreshToken !== undefined && !deps.keepRotatedRefreshTokens) refreshTargets.delete(info.refreshToken)
        if (typeof body.refresh_token === 'string' && info.sticky) remember(refreshTargets, body.refresh_token, info.sticky)
        if (info.target) {
          const issued = ctx.oidc.entities?.AccessToken
          if (!issued?.accountId || !issued.clientId) throw new Error('token endpoint: no AccessToken entity after the grant')
          body.access_token = await mint(info.target, { accountId: issued.accountId, clientId: issued.clientId, grantId: issued.grantId })
          body.token_type = 'Bearer'
          body.expires_in = deps.accessTokenTtl
          const oidcScopes = String(body.scope ?? '').split(' ').filter((s) => OIDC_SCOPES.has(s))
          body.scope = [...new Set(info.target.map((s) => s.value)), ...oidcScopes].join(' ')
        }
      } else if (body.error === 'invalid_grant' && info.refreshToken !== undefined && revoked.has(info.refreshToken)) {
        Object.assign(body, entraError('invalid_grant', 50173,
          'AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.'))
      }
    },

    onCodeSaved (code) {
      // Runs inside the authorization request; Provider.ctx is its Koa context (AsyncLocalStorage).
      const ctx = (OidcProvider as { ctx?: ProviderContext }).ctx
      const requested = resourceScopesOf(ctx?.oidc?.params?.scope)
      if (!code.jti || !requested.length) return
      const now = Date.now()
      for (const [key, entry] of codeTargets) if (entry.expiresAt <= now) codeTargets.delete(key)
      // Several resources at /authorize (consent for all): the token is for the first one.
      const first = requested[0]!.resource
      remember(codeTargets, code.jti, { scopes: requested.filter((s) => s.resource === first), expiresAt: now + CODE_TTL_MS })
    },

    setDelay (ms) {
      delayMs = Number.isFinite(ms) ? Math.min(Math.max(0, Math.floor(ms)), MAX_TOKEN_DELAY_MS) : 0
    },

    hold (grantType) {
      let open!: () => void
      const gate = new Promise<void>((resolve) => { open = resolve })
      let count = 0
      const waiters: Array<{ n: number; resolve: () => void }> = []
      const arrive = (): void => {
        count++
        for (const w of waiters.filter((x) => x.n <= count)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      const hold = { grantType, gate, arrive }
      held = hold
      return {
        arrivals: (n) => n <= count ? Promise.resolve() : new Promise<void>((resolve) => { waiters.push({ n, resolve }) }),
        release () {
          if (held === hold) held = undefined
          open()
        },
      }
    },

    cancelDelays () {
      for (const cancel of [...sleepers]) cancel()
    },

    markRevoked (refreshTokens) {
      for (const value of refreshTokens) {
        revoked.add(value)
        refreshTargets.delete(value)
      }
    },
  }
}

/**
 * A fresh request carrying `body` in place of the (already read) original, for oidc-provider,
 * which reads the body itself. Same socket, method, url and headers; Content-Length fixed up.
 */
function replayRequest (req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new http.IncomingMessage(req.socket)
  copy.method = req.method
  copy.url = req.url
  copy.httpVersion = req.httpVersion
  copy.httpVersionMajor = req.httpVersionMajor
  copy.httpVersionMinor = req.httpVersionMinor
  const headers = { ...req.headers, 'content-length': String(body.length) }
  delete headers['transfer-encoding']
  copy.headers = headers
  copy.rawHeaders = Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : v === undefined ? [] : [k, v]))
  ;(copy as IncomingMessage & { originalUrl?: string }).originalUrl = (req as IncomingMessage & { originalUrl?: string }).originalUrl
  copy.complete = true
  copy.push(body)
  copy.push(null)
  return copy
}

// ---------------------------------------------------------------------------------------------
// Storage: a small per-provider in-memory adapter
// ---------------------------------------------------------------------------------------------

interface StoredEntry {
  payload: Record<string, unknown>;
  expiresAt: number; // epoch ms; Infinity when no expiry
}

interface MemoryStorage {
  /** The `adapter` option of oidc-provider. */
  adapterFactory: (model: string) => object;
  /** Deletes the stored `model` entries whose payload matches; returns their ids (token values). */
  destroyWhere(model: string, match: (payload: Record<string, unknown>) => boolean): string[];
}

/**
 * oidc-provider's adapter contract (find/upsert/consume/destroy/findByUid/findByUserCode/
 * revokeByGrantId). Expiry is checked on read; the map is swept every few hundred writes so a
 * long demo does not grow without bound.
 *
 * `keepRotatedRefreshTokens`: `consume` leaves refresh tokens unmarked, so oidc-provider still
 * rotates them but never sees a reuse (Entra's behaviour: old refresh tokens stay valid).
 */
function createMemoryStorage (opts: { keepRotatedRefreshTokens: boolean }): MemoryStorage {
  const entries = new Map<string, StoredEntry>()
  const byGrant = new Map<string, Set<string>>()
  const bySessionUid = new Map<string, string>()
  const byUserCode = new Map<string, string>()
  let writes = 0

  const live = (key: string): StoredEntry | undefined => {
    const entry = entries.get(key)
    if (entry && entry.expiresAt <= Date.now()) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const sweep = (): void => {
    const now = Date.now()
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key)
    for (const [grantId, keys] of byGrant) {
      for (const key of keys) if (!entries.has(key)) keys.delete(key)
      if (keys.size === 0) byGrant.delete(grantId)
    }
    for (const [uid, id] of bySessionUid) if (!entries.has(`Session:${id}`)) bySessionUid.delete(uid)
    for (const [code, id] of byUserCode) if (!entries.has(`DeviceCode:${id}`)) byUserCode.delete(code)
  }

  const destroyWhere = (model: string, match: (payload: Record<string, unknown>) => boolean): string[] => {
    const ids: string[] = []
    const prefix = `${model}:`
    for (const [key, entry] of entries) {
      if (key.startsWith(prefix) && match(entry.payload)) {
        entries.delete(key)
        ids.push(key.slice(prefix.length))
      }
    }
    return ids
  }

  const adapterFactory = (model: string) => {
    const key = (id: string) => `${model}:${id}`
    return {
      async upsert (id: string, payload: Record<string, unknown>, expiresIn?: number) {
        const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
        entries.set(key(id), { payload, expiresAt })
        if (typeof payload.grantId === 'string') {
          let keys = byGrant.get(payload.grantId)
          if (!keys) byGrant.set(payload.grantId, (keys = new Set()))
          keys.add(key(id))
        }
        if (model === 'Session' && typeof payload.uid === 'string') bySessionUid.set(payload.uid, id)
        if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id)
        if (++writes % 500 === 0) sweep()
      },
      async find (id: string) {
        return live(key(id))?.payload
      },
      async findByUid (uid: string) {
        const id = bySessionUid.get(uid)
        return id ? live(`Session:${id}`)?.payload : undefined
      },
      async findByUserCode (userCode: string) {
        const id = byUserCode.get(userCode)
        return id ? live(key(id))?.payload : undefined
      },
      async consume (id: string) {
        if (model === 'RefreshToken' && opts.keepRotatedRefreshTokens) return
        const entry = live(key(id))
        if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000)
      },
      async destroy (id: string) {
        entries.delete(key(id))
      },
      async revokeByGrantId (grantId: string) {
        const keys = byGrant.get(grantId)
        if (!keys) return
        for (const k of keys) {
          if (k.startsWith(`${model}:`)) {
            entries.delete(k)
            keys.delete(k)
          }
        }
        if (keys.size === 0) byGrant.delete(grantId)
      },
    }
  }
  return { adapterFactory, destroyWhere }
}

// ---------------------------------------------------------------------------------------------
// Login interaction (our own, not devInteractions)
// ---------------------------------------------------------------------------------------------

type InteractionHandler = (req: IncomingMessage, res: ServerResponse, uid: string) => Promise<void>

function makeInteractionHandlers (
  provider: Provider,
  findUserByLogin: (login: string) => IdpUser | undefined
): InteractionHandler {
  return async (req, res, uid) => {
    let details: InteractionDetails
    try {
      details = await provider.interactionDetails(req, res)
    } catch (err) {
      // Missing/expired interaction cookie (e.g. the login page was reloaded after finishing).
      sendHtml(res, 400, page('Sign-in expired', `<h1>Sign-in expired</h1><p role="alert">${escapeHtml(describeError(err))}. Go back to the application and sign in again.</p>`))
      return
    }
    if (details.uid !== uid) {
      sendHtml(res, 400, page('Sign-in mismatch', '<h1>Sign-in mismatch</h1><p role="alert">This sign-in page does not belong to the current sign-in. Start again from the application.</p>'))
      return
    }
    const promptName = details.prompt.name
    const clientId = String(details.params.client_id ?? '')

    if (promptName === 'consent') {
      // Only reachable with an explicit prompt=consent: admin consent means no screen.
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined
      const accountId = details.session?.accountId
      if (!accountId) throw new Error('consent prompt without a signed-in account')
      const g = grant ?? new provider.Grant({ accountId, clientId })
      const d = details.prompt.details
      if (d.missingOIDCScope?.length) g.addOIDCScope(d.missingOIDCScope.join(' '))
      if (d.missingOIDCClaims?.length) g.addOIDCClaims(d.missingOIDCClaims)
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
        if (scopes.length) g.addResourceScope(indicator, scopes.join(' '))
      }
      await provider.interactionFinished(req, res, { consent: { grantId: await g.save() } }, { mergeWithLastSubmission: true })
      return
    }
    if (promptName !== 'login' && promptName !== 'select_account') {
      sendHtml(res, 400, page('Unsupported prompt', `<h1>Unsupported prompt</h1><p role="alert">${escapeHtml(promptName)}</p>`))
      return
    }

    const loginHint = typeof details.params.login_hint === 'string' ? details.params.login_hint : ''
    if (req.method === 'GET' || req.method === 'HEAD') {
      sendHtml(res, 200, loginPage({ uid, clientId, username: loginHint }))
      return
    }
    if (req.method !== 'POST') {
      sendHtml(res, 405, page('Method not allowed', '<h1>Method not allowed</h1>'), { Allow: 'GET, POST' })
      return
    }

    const form = new URLSearchParams(await readBody(req, 64 * 1024))
    const username = form.get('username') ?? ''
    const password = form.get('password') ?? ''
    const user = username ? findUserByLogin(username) : undefined
    if (!user || user.password !== password) {
      // 401 (not 200) so scripted clients can tell a rejected login from a fresh form.
      sendHtml(res, 401, loginPage({ uid, clientId, username, error: 'Your account or password is incorrect.' }))
      return
    }
    const result: Record<string, unknown> = { login: { accountId: user.oid, amr: ['pwd'] } }
    if (promptName === 'select_account') result.select_account = {}
    // 303 to the provider's resume URL; it then redirects to the client with the code.
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false })
  }
}

function loginPage (opts: { uid: string; clientId: string; username: string; error?: string }): string {
  const action = `/interaction/${encodeURIComponent(opts.uid)}`
  const error = opts.error
    ? `<p id="login-error" class="error" role="alert">${escapeHtml(opts.error)}</p>`
    : ''
  const describedBy = opts.error ? ' aria-describedby="login-error" aria-invalid="true"' : ''
  return page('Sign in to your account', `
  <h1>Sign in</h1>
  <p>to continue to <strong>${escapeHtml(opts.clientId)}</strong></p>
  ${error}
  <form id="login-form" method="post" action="${escapeHtml(action)}" autocomplete="on">
    <p>
      <label for="username">Username</label><br>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required${opts.username ? '' : ' autofocus'} value="${escapeHtml(opts.username)}"${describedBy}>
    </p>
    <p>
      <label for="password">Password</label><br>
      <input id="password" name="password" type="password" autocomplete="current-password" required${opts.username ? ' autofocus' : ''}${describedBy}>
    </p>
    <p><button type="submit" id="sign-in">Sign in</button></p>
  </form>`)
}

// ---------------------------------------------------------------------------------------------
// Userinfo (Entra-like: accepts the JWT access tokens this IdP issues)
// ---------------------------------------------------------------------------------------------

function makeUserinfoHandler (deps: {
  provider: Provider;
  issuer: string;
  tenantId: string;
  publicKey: CryptoKey;
  findUserByOid: (oid: unknown) => IdpUser | undefined;
}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const scopeClaims: Record<string, string[]> = {
    openid: ENTRA_OPENID_CLAIMS,
    profile: PROFILE_CLAIMS,
    email: EMAIL_CLAIMS,
  }
  const unauthorized = (res: ServerResponse, description: string) =>
    sendJson(res, 401, { error: 'invalid_token', error_description: description }, {
      'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description.replace(/"/g, "'")}"`,
    })

  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendJson(res, 405, { error: 'invalid_request' }, { Allow: 'GET, POST' })
      return
    }
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    if (!match?.[1]) {
      sendJson(res, 401, { error: 'invalid_request', error_description: 'no access token provided' }, { 'WWW-Authenticate': 'Bearer' })
      return
    }
    let payload: Record<string, unknown>
    try {
      ({ payload } = await jwtVerify(match[1], deps.publicKey, { issuer: deps.issuer, algorithms: ['RS256'], typ: 'at+jwt' }))
    } catch (err) {
      unauthorized(res, `access token invalid: ${describeError(err)}`)
      return
    }
    // The JWT may verify yet be revoked (sign-out, refresh-token replay): its grant is gone then.
    const grant = typeof payload.aio === 'string' ? await deps.provider.Grant.find(payload.aio) : undefined
    if (!grant || grant.clientId !== payload.client_id) {
      unauthorized(res, 'access token revoked')
      return
    }
    const user = deps.findUserByOid(grant.accountId)
    if (!user) {
      unauthorized(res, 'user no longer exists')
      return
    }
    const all = userClaims(user, deps.tenantId)
    all.sub = pairwiseSub(user.oid, grant.clientId)
    const scopes = String(payload.scope ?? '').split(' ')
    const allowed = new Set(scopes.flatMap((s) => scopeClaims[s] ?? []))
    const out: Record<string, unknown> = {}
    delete all.login_hint // an ID-token claim only
    for (const [key, value] of Object.entries(all)) {
      if (allowed.has(key) || key.startsWith('_claim_') || !isKnownClaim(key)) out[key] = value
    }
    sendJson(res, 200, out)
  }
}

function isKnownClaim (name: string): boolean {
  return ENTRA_OPENID_CLAIMS.includes(name) || PROFILE_CLAIMS.includes(name) || EMAIL_CLAIMS.includes(name)
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

/**
 * RP-initiated logout page. oidc-provider passes a form with the xsrf token; we add
 * `logout=yes` (sign out of the whole IdP session, as Entra does) and a visible button, all
 * inside the form, so a scripted client can just submit the form as is.
 */
async function logoutSource (ctx: ProviderContext, form: string): Promise<void> {
  const completed = form.replace(
    '</form>',
    '<input type="hidden" name="logout" value="yes"/><button type="submit" id="sign-out" autofocus>Sign out</button></form>'
  )
  ctx.type = 'html'
  ctx.body = page('Sign out', `<h1>Sign out</h1><p>Sign out of the development identity provider?</p>${completed}`)
}

async function postLogoutSuccessSource (ctx: ProviderContext): Promise<void> {
  ctx.type = 'html'
  ctx.body = page('Signed out', '<h1 id="signed-out">You signed out of your account</h1><p>It\'s a good idea to close all browser windows.</p>')
}

async function renderError (ctx: ProviderContext, out: Record<string, unknown>): Promise<void> {
  ctx.type = 'html'
  const rows = Object.entries(out)
    .map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(String(v))}</dd>`)
    .join('')
  ctx.body = page('Sign-in error', `<h1>Sorry, but we're having trouble signing you in.</h1><dl id="error">${rows}</dl>`)
}

function page (title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;line-height:1.4}
input{width:100%;padding:.4rem;font-size:1rem;box-sizing:border-box}
button{padding:.5rem 1.5rem;font-size:1rem}
.error{color:#a80000}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

const PAGE_HEADERS = {
  'Cache-Control': 'no-store',
  // No scripts anywhere on these pages. No form-action: Chromium applies it to the redirects
  // that follow a form post, which would block the redirect back to the application.
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
}

function sendHtml (res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...PAGE_HEADERS, 'Content-Type': 'text/html; charset=utf-8', ...headers })
  res.end(html)
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

async function readBody (req: IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBuffer(req, limit)).toString('utf8')
}

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function describeError (err: unknown): string {
  const e = err as KoaLikeError
  return e?.error_description ?? e?.message ?? String(err)
}

function deepFreeze<T> (value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v)
    Object.freeze(value)
  }
  return value
}

/*
 * Known differences from Entra ID (deliberate or inherited from oidc-provider):
 * - By default (`refreshTokenReuse: 'revoke-grant'`) replaying a rotated (already used) refresh
 *   token fails with invalid_grant AND revokes the whole grant, including the newest refresh
 *   token. Entra leaves every unexpired refresh token valid: `refreshTokenReuse: 'allow'`. A
 *   gateway must store the newest refresh token and serialise refreshes either way.
 * - The app's own access tokens (no URL scope) carry `typ: at+jwt` (RFC 9068) where Entra sends
 *   `typ: JWT`; tokens for URL-named resources carry `typ: JWT`.
 * - A sign-in with only OIDC scopes gets an access token for the app (aud = client id); Entra
 *   returns a Microsoft Graph token then. Scopes without a URL prefix (`User.Read`) are not taken
 *   as Graph scopes (Entra does); `api://...` scopes are ignored.
 * - Tokens for other resources are ordinary JWTs anyone can verify with the JWKS; real Graph
 *   tokens carry a header nonce and must be treated as opaque. No consent or permission model:
 *   any scope of any resource is granted, and `/.default` means `defaultScopes[resource]`.
 * - The refresh-token response carries the ID token of the sign-in's scopes whatever OIDC scopes
 *   a refresh with URL scopes names.
 * - Error bodies carry Entra's `AADSTS` codes only for the cases this file produces itself
 *   (70011, 50173); oidc-provider's own errors keep its wording.
 * - Claims named in `extraClaims` are released only if they are Entra claims listed above or
 *   were present in some user's `extraClaims` at start (`_claim_names`/`_claim_sources` always).
 */
