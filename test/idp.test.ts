// The Entra-shaped development IdP, checked through openid-client exactly as the gateway uses it.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import * as client from 'openid-client'
import { createLocalJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet } from 'jose'
import { startIdp, DEMO_USERS, DEFAULT_TENANT_ID, type Idp } from '../dev/idp.js'
import { DEV_CLIENT_ID } from '../dev/client-id.js'
import { Browser, SignInError, parseForms, signIn, submitForm } from './helpers/browser.js'

const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'idp-test-secret-0123456789'
const ALICE = DEMO_USERS[0]!

/** Stands in for the gateway's callback: the test only needs the redirect URL itself. */
async function startRedirectTarget (): Promise<{ origin: string, close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.end('callback reached')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: async () => await new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}

interface Flow {
  url: URL
  verifier: string
  state: string
  nonce: string
}

async function authorizationUrl (config: client.Configuration, redirectUri: string, scope: string, extra: Record<string, string> = {}): Promise<Flow> {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra
  })
  return { url, verifier, state, nonce }
}

async function redeem (config: client.Configuration, flow: Flow, callbackUrl: string): Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers> {
  return await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true
  })
}

t.test('Entra-shaped IdP', async t => {
  const target = await startRedirectTarget()
  const redirectUri = `${target.origin}/oauth/openid/callback`
  const idp: Idp = await startIdp({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri], post_logout_redirect_uris: [`${target.origin}/bye`] }],
    users: DEMO_USERS
  })
  t.teardown(async () => {
    await idp.close()
    await target.close()
  })

  t.equal(idp.issuer, `http://127.0.0.1:${new URL(idp.origin).port}/${DEFAULT_TENANT_ID}/v2.0`, 'issuer is origin/<tenant>/v2.0')

  const config = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] })
  client.enableNonRepudiationChecks(config)
  const meta = config.serverMetadata()
  const jwks = await (await fetch(meta.jwks_uri!)).json() as JSONWebKeySet
  const keys = createLocalJWKSet(jwks)

  t.test('discovery looks like Entra', async t => {
    t.equal(meta.issuer, idp.issuer)
    t.notOk('code_challenge_methods_supported' in meta, 'no code_challenge_methods_supported')
    t.equal(config.serverMetadata().supportsPKCE(), false, 'openid-client therefore thinks PKCE is unsupported')
    t.ok(meta.authorization_endpoint?.startsWith(idp.issuer + '/'), 'endpoints live under the issuer path')
    t.ok(meta.end_session_endpoint?.startsWith(idp.issuer + '/'), 'end_session_endpoint advertised')
    t.ok(meta.userinfo_endpoint, 'userinfo_endpoint advertised')
    t.same(meta.id_token_signing_alg_values_supported, ['RS256'])
    t.same(jwks.keys.map(k => k.alg), ['RS256'], 'one RS256 key served')
  })

  // Shared between the subtests below (they run in order).
  let firstRefreshToken = ''
  let aliceSub = ''

  t.test('code + PKCE + state + nonce, with offline_access', async t => {
    const browser = new Browser()
    const flow = await authorizationUrl(config, redirectUri, 'openid profile email offline_access')
    const { response, chain } = await signIn(browser, flow.url.href, 'alice', 'alice')
    t.equal(response.status, 200, 'lands on the redirect target')
    const callback = chain[chain.length - 1]!
    t.ok(callback.startsWith(redirectUri + '?'), 'last hop is the redirect_uri')
    t.ok(new URL(callback).searchParams.get('code'), 'with a code')

    const tokens = await redeem(config, flow, callback)
    const claims = tokens.claims()!
    t.equal(claims.oid, ALICE.oid, 'oid')
    t.equal(claims.tid, DEFAULT_TENANT_ID, 'tid')
    t.equal(claims.ver, '2.0', 'ver')
    t.equal(claims.name, 'Alice Zoë Ångström', 'non-ASCII name intact')
    t.equal(claims.preferred_username, ALICE.preferredUsername)
    t.equal(claims.email, ALICE.email)
    t.same(claims.roles, ['ChatUser'], 'roles')
    t.same(claims.groups, ALICE.groups, 'groups')
    t.not(claims.sub, ALICE.oid, 'sub is pairwise, not the oid (as in Entra)')
    aliceSub = claims.sub

    t.ok(tokens.refresh_token, 'refresh token issued for offline_access without prompt=consent')
    firstRefreshToken = tokens.refresh_token!

    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, keys, { issuer: idp.issuer, audience: CLIENT_ID })
    t.equal(protectedHeader.alg, 'RS256', 'access token is an RS256 JWT')
    t.same(payload.roles, ['ChatUser'], 'access token carries roles')
    t.equal(payload.oid, ALICE.oid)
    t.equal(payload.tid, DEFAULT_TENANT_ID)
    t.match(payload.scp, /\bprofile\b/, 'scp')
    t.equal(tokens.expires_in, 3600, 'access token lives an hour')

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    t.equal(userinfo.name, 'Alice Zoë Ångström', 'userinfo name')
    t.same(userinfo.roles, ['ChatUser'], 'userinfo roles')
    t.equal(userinfo.oid, ALICE.oid, 'userinfo oid')

    // Same browser: SSO, no form; without offline_access there is no refresh token.
    const again = await authorizationUrl(config, redirectUri, 'openid profile email')
    const sso = await browser.follow(again.url.href)
    const ssoCallback = sso.chain[sso.chain.length - 1]!
    t.ok(ssoCallback.startsWith(redirectUri + '?'), 'SSO: straight back to the client')
    const ssoTokens = await redeem(config, again, ssoCallback)
    t.notOk(ssoTokens.refresh_token, 'SSO without offline_access: no refresh token')
    const third = await authorizationUrl(config, redirectUri, 'openid profile offline_access')
    const sso2 = await browser.follow(third.url.href)
    t.ok((await redeem(config, third, sso2.chain[sso2.chain.length - 1]!)).refresh_token, 'SSO with offline_access: refresh token')
  })

  t.test('refresh rotates and re-reads the user', async t => {
    idp.users.get('alice')!.roles = ['ChatUser', 'Admin']
    t.teardown(() => { idp.users.get('alice')!.roles = ['ChatUser'] })

    const refreshed = await client.refreshTokenGrant(config, firstRefreshToken)
    t.ok(refreshed.refresh_token, 'a new refresh token')
    t.not(refreshed.refresh_token, firstRefreshToken, 'rotated')
    const claims = refreshed.claims()!
    t.same(claims.roles, ['ChatUser', 'Admin'], 'new ID token has the changed roles')
    t.equal(claims.sub, aliceSub, 'same sub')
    t.same(decodeJwt(refreshed.access_token).roles, ['ChatUser', 'Admin'], 'new access token too')

    // Client authentication by HTTP Basic works as well as client_secret_post.
    const basic = await client.discovery(new URL(idp.issuer), CLIENT_ID, undefined, client.ClientSecretBasic(CLIENT_SECRET), { execute: [client.allowInsecureRequests] })
    const again = await client.refreshTokenGrant(basic, refreshed.refresh_token!)
    t.ok(again.refresh_token, 'client_secret_basic accepted')

    // oidc-provider (unlike Entra) treats reuse of a rotated token as replay.
    await t.rejects(client.refreshTokenGrant(config, firstRefreshToken), { name: 'ResponseBodyError', error: 'invalid_grant' }, 'a used refresh token is rejected')
    await t.rejects(client.refreshTokenGrant(config, again.refresh_token!), { name: 'ResponseBodyError', error: 'invalid_grant' }, '...and the replay revoked the whole grant')
    await t.rejects(client.fetchUserInfo(config, again.access_token, aliceSub), { name: 'WWWAuthenticateChallengeError', status: 401 }, 'userinfo refuses access tokens of a revoked grant')
  })

  t.test('without offline_access: no refresh token', async t => {
    const flow = await authorizationUrl(config, redirectUri, 'openid profile email')
    const { chain } = await signIn(new Browser(), flow.url.href, 'bob', 'bob')
    const tokens = await redeem(config, flow, chain[chain.length - 1]!)
    t.notOk(tokens.refresh_token, 'no refresh token')
    const claims = tokens.claims()!
    t.equal(claims.name, 'Bob Æsir Øvergård')
    t.notOk('roles' in claims, 'no roles claim when none are assigned')
    t.same(decodeJwt(tokens.access_token).roles, undefined, 'nor in the access token')
  })

  t.test('PKCE is enforced when a challenge was sent', async t => {
    const flow = await authorizationUrl(config, redirectUri, 'openid')
    const { chain } = await signIn(new Browser(), flow.url.href, 'alice', 'alice')
    await t.rejects(
      redeem(config, { ...flow, verifier: client.randomPKCECodeVerifier() }, chain[chain.length - 1]!),
      { name: 'ResponseBodyError', error: 'invalid_grant' },
      'wrong code_verifier rejected'
    )
  })

  t.test('wrong password shows an error on the form', async t => {
    const browser = new Browser()
    const flow = await authorizationUrl(config, redirectUri, 'openid')
    const first = await browser.follow(flow.url.href)
    const html = await first.response.text()
    t.match(html, /<label for="username">/, 'labelled username input')
    t.match(html, /<label for="password">/, 'labelled password input')
    t.match(html, /id="sign-in"/, 'sign-in button')
    const form = parseForms(html, first.chain[first.chain.length - 1]!)[0]!
    const rejected = await submitForm(browser, form, { username: 'alice', password: 'nope' })
    t.equal(rejected.response.status, 401)
    t.match(await rejected.response.text(), /role="alert"[^>]*>Your account or password is incorrect/)

    // A second try on the same page succeeds.
    const retry = await submitForm(browser, form, { username: 'ALICE', password: 'alice' })
    t.ok(retry.chain[retry.chain.length - 1]!.startsWith(redirectUri + '?'), 'then signs in (username case-insensitive)')

    await t.rejects(signIn(new Browser(), flow.url.href, 'alice', 'nope'), SignInError, 'signIn throws SignInError')
  })

  t.test('group overage shape passes through', async t => {
    const alice = idp.users.get('alice')!
    const saved = { groups: alice.groups, extraClaims: alice.extraClaims }
    t.teardown(() => Object.assign(alice, saved))
    alice.groups = undefined
    alice.extraClaims = {
      _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: `https://graph.windows.net/${DEFAULT_TENANT_ID}/users/${ALICE.oid}/getMemberObjects` } }
    }
    const flow = await authorizationUrl(config, redirectUri, 'openid profile')
    const { chain } = await signIn(new Browser(), flow.url.href, 'alice', 'alice')
    const claims = (await redeem(config, flow, chain[chain.length - 1]!)).claims()!
    t.notOk('groups' in claims, 'no groups claim')
    t.same(claims._claim_names, { groups: 'src1' }, '_claim_names')
    t.ok((claims._claim_sources as Record<string, unknown>).src1, '_claim_sources')
  })

  t.test('end session', async t => {
    const browser = new Browser()
    const flow = await authorizationUrl(config, redirectUri, 'openid')
    const { chain } = await signIn(browser, flow.url.href, 'alice', 'alice')
    const tokens = await redeem(config, flow, chain[chain.length - 1]!)
    const logoutUrl = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: `${target.origin}/bye`,
      state: 'xyz'
    })
    const page = await browser.follow(logoutUrl.href)
    const html = await page.response.text()
    t.match(html, /id="sign-out"/, 'a sign-out page with a button')
    const form = parseForms(html, page.chain[page.chain.length - 1]!)[0]!
    const done = await submitForm(browser, form)
    t.equal(done.chain[done.chain.length - 1], `${target.origin}/bye?state=xyz`, 'back at post_logout_redirect_uri with state')

    // logout_hint + client_id form (for URLs too long for id_token_hint) is accepted as well.
    const byHint = client.buildEndSessionUrl(config, { logout_hint: 'alice@contoso.example', client_id: CLIENT_ID })
    t.equal((await browser.follow(byHint.href)).response.status, 200, 'logout_hint + client_id accepted')

    // The IdP session is gone: the next sign-in shows the form again.
    const next = await authorizationUrl(config, redirectUri, 'openid')
    await signIn(browser, next.url.href, 'alice', 'alice')
    t.pass('login form shown again after sign-out')
  })

  t.test('prompt=select_account and login_hint', async t => {
    const browser = new Browser()
    const flow = await authorizationUrl(config, redirectUri, 'openid', { prompt: 'select_account', login_hint: 'bob@contoso.example' })
    const first = await browser.follow(flow.url.href)
    t.match(await first.response.text(), /value="bob@contoso\.example"/, 'login_hint prefills the username')
    const { chain } = await signIn(browser, flow.url.href, 'bob', 'bob')
    t.ok(chain[chain.length - 1]!.startsWith(redirectUri + '?code='), 'completes')
  })

  t.test('prompt=none and prompt=consent', async t => {
    const browser = new Browser()
    const silent = await authorizationUrl(config, redirectUri, 'openid', { prompt: 'none' })
    const none = await browser.follow(silent.url.href)
    t.equal(new URL(none.chain[none.chain.length - 1]!).searchParams.get('error'), 'login_required', 'prompt=none without a session')

    await signIn(browser, (await authorizationUrl(config, redirectUri, 'openid')).url.href, 'alice', 'alice')
    const flow = await authorizationUrl(config, redirectUri, 'openid offline_access', { prompt: 'consent' })
    const { chain } = await browser.follow(flow.url.href)
    const tokens = await redeem(config, flow, chain[chain.length - 1]!)
    t.ok(tokens.refresh_token, 'prompt=consent is answered without a screen')
  })

  t.test('outage', async t => {
    idp.setDown(true)
    t.teardown(() => idp.setDown(false))
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`)
    t.equal(res.status, 503, 'discovery 503 while down')
    await res.body?.cancel()
    idp.setDown(false)
    const ok = await fetch(`${idp.issuer}/.well-known/openid-configuration`)
    t.equal(ok.status, 200, 'back up')
    await ok.body?.cancel()
  })
})

// ---------------------------------------------------------------------------------------------
// Entra's one-resource-per-access-token model and the test knobs
// ---------------------------------------------------------------------------------------------

/** A resource that is never contacted: only its URL matters. */
const API = 'http://127.0.0.1:4567'
const GRAPH = 'https://graph.microsoft.com'
const SHAREPOINT = 'https://contoso.sharepoint.com'
const TTL = 1200

interface Harness {
  idp: Idp
  config: client.Configuration
  keys: ReturnType<typeof createLocalJWKSet>
  redirectUri: string
  /** Signs in (fresh browser unless given) and redeems the code. */
  signInAs: (username: string, scope: string, opts?: { browser?: Browser, tokenParameters?: Record<string, string> }) => Promise<client.TokenEndpointResponse & client.TokenEndpointResponseHelpers>
}

async function harness (t: Test, extra: Partial<Parameters<typeof startIdp>[0]> = {}): Promise<Harness> {
  const target = await startRedirectTarget()
  const redirectUri = `${target.origin}/oauth/openid/callback`
  const idp = await startIdp({
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri] }],
    users: DEMO_USERS,
    ...extra
  })
  t.teardown(async () => {
    await idp.close()
    await target.close()
  })
  const config = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] })
  client.enableNonRepudiationChecks(config)
  const keys = createLocalJWKSet(await (await fetch(config.serverMetadata().jwks_uri!)).json() as JSONWebKeySet)
  return {
    idp,
    config,
    keys,
    redirectUri,
    signInAs: async (username, scope, opts = {}) => {
      const flow = await authorizationUrl(config, redirectUri, scope)
      const { chain } = await signIn(opts.browser ?? new Browser(), flow.url.href, username, username)
      return await client.authorizationCodeGrant(config, new URL(chain[chain.length - 1]!), {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: scope.split(' ').includes('openid')
      }, opts.tokenParameters)
    }
  }
}

t.test('Entra resource tokens', async t => {
  const h = await harness(t, { accessTokenTtlSeconds: TTL, defaultScopes: { [GRAPH]: ['User.Read', 'GroupMember.Read.All'] } })
  const { idp, config, keys } = h

  t.test('URL scopes at sign-in: the access token is for that resource', async t => {
    const tokens = await h.signInAs('alice', `openid profile email offline_access ${API}/User.Read ${API}/People.Read`)
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, keys, { issuer: idp.issuer, audience: API })
    t.equal(protectedHeader.alg, 'RS256', 'RS256, signed with the IdP key')
    t.equal(protectedHeader.typ, 'JWT', 'typ JWT, as Entra')
    t.equal(payload.aud, API, 'aud is the resource')
    t.equal(payload.scp, 'User.Read People.Read', 'scp: the short names')
    t.equal(payload.oid, ALICE.oid, 'oid')
    t.equal(payload.tid, DEFAULT_TENANT_ID, 'tid')
    t.equal(payload.azp, CLIENT_ID, 'azp is the client')
    t.notOk('roles' in payload, "no app roles in another resource's token")
    t.equal(payload.exp! - payload.iat!, TTL, 'lifetime accessTokenTtlSeconds')
    t.equal(tokens.expires_in, TTL, 'expires_in')
    t.equal(tokens.token_type, 'bearer', 'bearer')
    t.match(tokens.scope, new RegExp(`(^| )${API}/User\\.Read( |$)`), 'response scope names the resource scopes')
    t.match(tokens.scope, /(^| )openid( |$)/, '...and the OIDC ones')

    const claims = tokens.claims()!
    t.equal(claims.aud, CLIENT_ID, 'the ID token is still for the client')
    t.same(claims.roles, ['ChatUser'], 'with the app roles')
    t.match(claims.login_hint, /^O\.[\w-]+$/, 'login_hint claim (Entra)')
    t.notOk('login_hint' in payload, 'login_hint only in the ID token')
    t.ok(tokens.refresh_token, 'refresh token')

    const again = await client.refreshTokenGrant(config, tokens.refresh_token!)
    t.equal(decodeJwt(again.access_token).aud, API, 'a refresh without scope targets what the sign-in targeted')
    t.equal(again.claims()?.sub, claims.sub, 'ID token on refresh: same sub')
  })

  t.test('several resources at sign-in: the token is for the first', async t => {
    const browser = new Browser()
    const tokens = await h.signInAs('alice', `openid ${SHAREPOINT}/AllSites.Read ${API}/User.Read`, { browser })
    const payload = decodeJwt(tokens.access_token)
    t.equal(payload.aud, SHAREPOINT)
    t.equal(payload.scp, 'AllSites.Read')

    // SSO (the code comes straight from /authorize, no login form): same rules.
    const flow = await authorizationUrl(config, h.redirectUri, `openid ${GRAPH}/User.Read`)
    const { chain } = await browser.follow(flow.url.href)
    const sso = await redeem(config, flow, chain[chain.length - 1]!)
    t.equal(decodeJwt(sso.access_token).aud, GRAPH, 'SSO sign-in with a Graph scope: Graph token')
  })

  t.test('refresh tokens are not tied to a resource', async t => {
    const tokens = await h.signInAs('alice', 'openid profile offline_access')
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, keys, { issuer: idp.issuer, audience: CLIENT_ID })
    t.equal(protectedHeader.typ, 'at+jwt', 'without URL scopes: the app token as before')
    t.match(payload.scp, /\bprofile\b/)
    t.equal(tokens.expires_in, TTL, 'app token lifetime follows accessTokenTtlSeconds too')

    const graph = await client.refreshTokenGrant(config, tokens.refresh_token!, { scope: `openid offline_access ${GRAPH}/User.Read ${GRAPH}/People.Read` })
    const g = await jwtVerify(graph.access_token, keys, { issuer: idp.issuer, audience: GRAPH })
    t.equal(g.payload.scp, 'User.Read People.Read', 'Graph token from the sign-in refresh token')
    t.equal(g.payload.oid, ALICE.oid)
    t.not(graph.refresh_token, tokens.refresh_token, 'rotated')
    t.same(graph.claims()?.roles, ['ChatUser'], 'the ID token still has the app claims')

    const sp = await client.refreshTokenGrant(config, graph.refresh_token!, { scope: `${SHAREPOINT}/AllSites.Read` })
    t.equal(decodeJwt(sp.access_token).aud, SHAREPOINT, 'SharePoint token from the same chain')
    t.equal(decodeJwt(sp.access_token).scp, 'AllSites.Read')

    const def = await client.refreshTokenGrant(config, sp.refresh_token!, { scope: `${GRAPH}/.default offline_access` })
    t.equal(decodeJwt(def.access_token).scp, 'User.Read GroupMember.Read.All', '/.default: scp from defaultScopes')

    const own = await client.refreshTokenGrant(config, def.refresh_token!)
    t.equal(decodeJwt(own.access_token).aud, CLIENT_ID, 'without scope: what the sign-in targeted (the app)')
  })

  t.test('mixing resources in one token request: AADSTS70011', async t => {
    const tokens = await h.signInAs('bob', 'openid offline_access')
    const rt = tokens.refresh_token!
    await t.rejects(
      client.refreshTokenGrant(config, rt, { scope: `openid ${GRAPH}/User.Read ${SHAREPOINT}/AllSites.Read` }),
      { name: 'ResponseBodyError', status: 400, error: 'invalid_scope', error_description: /^AADSTS70011: .*not compatible/ },
      'two resources on refresh'
    )
    await t.rejects(
      client.refreshTokenGrant(config, rt, { scope: `${GRAPH}/.default ${GRAPH}/User.Read` }),
      { name: 'ResponseBodyError', error: 'invalid_scope', error_description: /^AADSTS70011: / },
      '/.default next to another scope of the same resource'
    )
    const ok = await client.refreshTokenGrant(config, rt, { scope: `openid profile email offline_access ${API}/User.Read` })
    t.equal(decodeJwt(ok.access_token).aud, API, 'a refused request consumed nothing; OIDC scopes mix with one resource')

    await t.rejects(
      h.signInAs('bob', 'openid', { tokenParameters: { scope: `${GRAPH}/User.Read ${API}/User.Read` } }),
      { name: 'ResponseBodyError', error: 'invalid_scope', error_description: /AADSTS70011/ },
      'two resources on code redemption'
    )
    const byParam = await h.signInAs('bob', 'openid', { tokenParameters: { scope: `openid ${GRAPH}/User.Read` } })
    t.equal(decodeJwt(byParam.access_token).aud, GRAPH, 'URL scopes of the code redemption decide the resource')
  })

  t.test('revokeRefreshTokens: invalid_grant until the user signs in again', async t => {
    const alice = await h.signInAs('alice', 'openid offline_access')
    const bob1 = await h.signInAs('bob', 'openid offline_access')
    const bob2 = await h.signInAs('bob', 'openid offline_access')
    const browser = new Browser()
    await h.signInAs('bob', 'openid', { browser })

    t.ok(idp.revokeRefreshTokens('bob', { endSessions: true }) >= 2, "counts bob's refresh tokens")
    for (const rt of [bob1.refresh_token!, bob2.refresh_token!]) {
      await t.rejects(client.refreshTokenGrant(config, rt, { scope: `${GRAPH}/User.Read` }),
        { name: 'ResponseBodyError', status: 400, error: 'invalid_grant', error_description: /^AADSTS50173: / }, 'revoked')
    }
    t.ok((await client.refreshTokenGrant(config, alice.refresh_token!)).access_token, 'other users unaffected')

    // endSessions: no SSO, the form again.
    const flow = await authorizationUrl(config, h.redirectUri, 'openid')
    const page = await browser.follow(flow.url.href)
    t.match(await page.response.text(), /id="login-form"/, 'endSessions: the sign-in form again')

    const fresh = await h.signInAs('bob', 'openid offline_access')
    t.ok((await client.refreshTokenGrant(config, fresh.refresh_token!)).access_token, 'a new sign-in refreshes again')
    t.throws(() => idp.revokeRefreshTokens('nobody'), /no user/, 'unknown user')
  })

  t.test('tokenRequests, setDown, setSlow', async t => {
    idp.tokenRequests.authorization_code = 0
    idp.tokenRequests.refresh_token = 0
    const tokens = await h.signInAs('alice', 'openid offline_access')
    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!)
    t.same({ ...idp.tokenRequests }, { authorization_code: 1, refresh_token: 1 }, 'one of each')

    idp.setDown(true)
    await t.rejects(client.refreshTokenGrant(config, refreshed.refresh_token!), { message: /unexpected HTTP response status code/ }, '503 while down')
    idp.setDown(false)
    t.equal(idp.tokenRequests.refresh_token, 2, 'counted while down too')

    // 20 concurrent refreshes of one refresh token: 20 requests counted (and, with oidc-provider's
    // replay detection, the first wins and the reuse revokes the grant).
    idp.setSlow(200)
    const started = Date.now()
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.refreshTokenGrant(config, refreshed.refresh_token!)))
    t.ok(Date.now() - started >= 190, 'setSlow delays token responses')
    idp.setSlow(0)
    t.equal(idp.tokenRequests.refresh_token, 22, 'every request counted')
    t.ok(results.some(r => r.status === 'fulfilled'), 'one refresh succeeded')
    t.ok(results.some(r => r.status === 'rejected'), 'the reuses failed')
  })
})

t.test("refreshTokenReuse: 'allow' keeps rotated refresh tokens valid (Entra)", async t => {
  const h = await harness(t, { refreshTokenReuse: 'allow' })
  const first = await h.signInAs('alice', `openid offline_access ${API}/User.Read`)
  const second = await client.refreshTokenGrant(h.config, first.refresh_token!)
  t.not(second.refresh_token, first.refresh_token, 'still rotated')
  const again = await client.refreshTokenGrant(h.config, first.refresh_token!)
  t.ok(again.refresh_token, 'the old refresh token still works')
  t.equal(decodeJwt(again.access_token).aud, API, '...and still targets the sign-in resource')
  t.ok((await client.refreshTokenGrant(h.config, second.refresh_token!)).access_token, 'the newer one too')
})

t.test('close() ends a token request delayed by setSlow', async t => {
  const target = await startRedirectTarget()
  t.teardown(() => target.close())
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${target.origin}/cb`] }], users: DEMO_USERS })
  idp.setSlow(Number.MAX_SAFE_INTEGER) // clamped to MAX_TOKEN_DELAY_MS
  const request = fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: CLIENT_ID, client_secret: CLIENT_SECRET })
  })
  // Wait for the request to be counted (it is then inside the delay), yielding to the event loop.
  while (idp.tokenRequests.refresh_token === 0) await new Promise(resolve => setImmediate(resolve))
  const started = Date.now()
  await idp.close()
  await t.rejects(request, 'the delayed request is cut off')
  t.ok(Date.now() - started < 5000, 'promptly')
})

t.test('holdTokenRequests: held until released; close() ends a held request', async t => {
  const h = await harness(t)
  const tokens = await h.signInAs('alice', 'openid offline_access')
  const hold = h.idp.holdTokenRequests('refresh_token')
  let settled = false
  const refresh = client.refreshTokenGrant(h.config, tokens.refresh_token!).finally(() => { settled = true })
  await hold.arrivals(1)
  t.equal(settled, false, 'held')
  hold.release()
  const refreshed = await refresh
  t.ok(refreshed.access_token, 'answered once released')
  t.ok((await client.refreshTokenGrant(h.config, refreshed.refresh_token!)).access_token, 'later requests pass')

  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: ['http://127.0.0.1:1/cb'] }], users: DEMO_USERS })
  const again = idp.holdTokenRequests()
  const cut = fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: CLIENT_ID, client_secret: CLIENT_SECRET })
  })
  await again.arrivals(1)
  await idp.close()
  await t.rejects(cut, 'the held request is cut off')
})
