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
 *   get an access token for THAT resource, at sign-in and on refresh (the rules are in
 *   idp/token-endpoint.ts);
 * - client credentials besides the secret, checked as Entra checks them (idp/client-assertion.ts):
 *   certificates found by thumbprint (`x5t#S256`/`x5t`, AADSTS700027 when not registered) and
 *   federated credentials (issuer, subject, audience; AADSTS70021 when none matches);
 * - `login_hint` claim in ID tokens (an opaque value, usable as `logout_hint`);
 * - no consent screen: an app with admin consent never shows one;
 * - `realm: 'organizations'`: Entra's multi-tenant endpoints at `/organizations/v2.0`, whose
 *   metadata carries the issuer template `<origin>/{tenantid}/v2.0` and whose ID tokens carry the
 *   user's own tenant (`IdpUser.tenantId`) in `iss`, on a host that is not Microsoft's;
 * - sign-out ends the apps' sessions too: the signed-out page frames each client's
 *   `frontchannel_logout_uri` with `iss` and its `sid` (Entra's "Front-channel logout URL"; Entra
 *   itself sends only `sid`), and clients with a `backchannel_logout_uri` get an OpenID
 *   back-channel logout token (Entra has none); ID tokens always carry `sid` (Entra: an optional claim).
 *
 * Test knobs on the returned Idp: `setDown`, `setSlow` (token endpoint latency), `holdTokenRequests`
 * (token requests wait until the test releases them),
 * `revokeRefreshTokens` (invalid_grant on the next refresh, as after a password reset or
 * revokeSignInSessions), `tokenRequests` (token-endpoint calls per grant type).
 *
 * Known differences from Entra are listed at the end of this file.
 *
 * Modules (each imports only those listed before it):
 * - idp/oidc.ts: the one untyped import of oidc-provider, and the typed subset used;
 * - idp/types.ts: the public types; idp/users.ts: DEMO_USERS and user look-ups;
 * - idp/claims.ts: the Entra-shaped claims and which scope releases which;
 * - idp/respond.ts: responses and page chrome; idp/storage.ts: the in-memory adapter;
 * - idp/client-assertion.ts: certificate and federated client assertions, checked as Entra does;
 * - idp/token-endpoint.ts: per-resource access tokens, counters, latency, holds, revocation;
 * - idp/interactions.ts: login, consent, sign-out and error pages; idp/userinfo.ts: userinfo;
 * - idp/provider.ts: startIdp (configuration, keys, tenant mount, routing).
 */
export { startIdp, DEFAULT_TENANT_ID } from './idp/provider.js'
export { ADMIN_USER, DEMO_USERS, UNASSIGNED_USER } from './idp/users.js'
export { MAX_TOKEN_DELAY_MS } from './idp/token-endpoint.js'
export type { Idp, IdpClient, IdpUser, StartIdpOptions, TokenHold, TokenRequestCounts } from './idp/types.js'
export type { InteractionDetails, Provider } from './idp/oidc.js'
export { ENTRA_FEDERATION_AUDIENCE, type FederatedCredential } from './idp/client-assertion.js'

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
 * - Error bodies carry Entra's `AADSTS` codes only for the cases this IdP produces itself
 *   (70011, 50173); oidc-provider's own errors keep its wording.
 * - In the organizations realm only the ID token and tokens for URL-named resources are re-signed
 *   with the user's tenant's `iss`; the app's own access token (oidc-provider's) keeps the template.
 * - Claims named in `extraClaims` are released only if they are the Entra claims listed in idp/claims.ts or
 *   were present in some user's `extraClaims` at start (`_claim_names`/`_claim_sources` always).
 */
