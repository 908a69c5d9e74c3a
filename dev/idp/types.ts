/** The public types of the dev IdP (re-exported by dev/idp.ts). */
import type { FederatedCredential } from './client-assertion.js'
import type { Provider } from './oidc.js'

export interface IdpUser {
  /** Login name typed into the form (matched case-insensitively, as is `preferredUsername`). */
  username: string;
  password: string;
  /** Entra object id: the stable user key, and the oidc-provider accountId. */
  oid: string;
  name: string;
  email?: string;
  preferredUsername: string;
  /** The user's home tenant (`tid`); default the IdP's. In the organizations realm it decides the tokens' `iss`. */
  tenantId?: string;
  /** App roles assigned for this app (`roles` claim); omitted from tokens when undefined/empty. */
  roles?: string[];
  /** Group object ids (`groups` claim); omitted when undefined. */
  groups?: string[];
  /** Merged over the standard claims, e.g. `_claim_names`/`_claim_sources` (group overage), `wids`. */
  extraClaims?: Record<string, unknown>;
  /**
   * false: not assigned to the app while the app requires assignment: a correct password ends
   * the sign-in with `access_denied` and AADSTS50105, as Entra does.
   */
  assigned?: boolean;
}

export interface IdpClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /** Certificates uploaded to the app registration (PEM): client assertions signed by their keys are accepted. */
  certificates?: string[];
  /** Federated identity credentials: tokens of a trusted issuer for this subject are accepted as client assertions. */
  federatedCredentials?: FederatedCredential[];
  /**
   * Front-channel logout URL (Entra: "Front-channel logout URL" under Authentication): when the
   * user signs out at this IdP, its signed-out page frames `<uri>?iss=<issuer>&sid=<sid>`.
   */
  frontchannel_logout_uri?: string;
  /** OpenID back-channel logout: at sign-out this IdP POSTs a signed `logout_token` here (Entra has none). */
  backchannel_logout_uri?: string;
}

export interface StartIdpOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Default DEFAULT_TENANT_ID. */
  tenantId?: string;
  /**
   * `'tenant'` (default): one tenant's endpoints, issuer `<origin>/<tenantId>/v2.0`.
   * `'organizations'`: Entra's multi-tenant endpoints, mounted at `<origin>/organizations/v2.0`,
   * whose metadata carries the issuer template `<origin>/{tenantid}/v2.0`; each ID token's `iss`
   * is `<origin>/<the user's tid>/v2.0`, as Entra's on any cloud.
   */
  realm?: 'tenant' | 'organizations';
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

export interface Idp {
  /** `http://host:port/<tenantId>/v2.0` (`.../organizations/v2.0` in the organizations realm), no trailing slash: what a client is configured with. */
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
   * Token-endpoint requests per client authentication method used: `client_secret_basic`
   * (Authorization: Basic), `client_secret_post` (client_secret in the form), `private_key_jwt`
   * (a certificate's client assertion), `federated` (a federated token as client assertion),
   * `refused_assertion` or `none`. Both secret methods are accepted for every client, as Entra
   * accepts both.
   */
  tokenAuthMethods: Record<string, number>;
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
  /** Uploads a certificate (PEM) to a client's app registration, as in Certificates & secrets. */
  addClientCertificate(clientId: string, certificatePem: string): void;
  /** Adds a federated identity credential to a client's app registration. */
  addFederatedCredential(clientId: string, credential: FederatedCredential): void;
  /** Closes the server and every open connection. */
  close(): Promise<void>;
}

export interface TokenHold {
  /** Resolves once `n` requests (in all) have been held. */
  arrivals(n: number): Promise<void>;
  /** Lets every held request (and later ones) through. */
  release(): void;
}
