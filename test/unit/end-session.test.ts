import t from 'tap'
import { Configuration } from 'openid-client'
import { endSessionUrl } from '../../src/oidc/flow.js'
import { DEFAULT_MAX_LOGOUT_URL_LENGTH } from '../../src/config/identity-provider.js'

const server = { issuer: 'https://login.microsoftonline.com/t/v2.0', end_session_endpoint: 'https://login.microsoftonline.com/t/oauth2/v2.0/logout' }
const oidc = new Configuration(server, 'client-1')
const base = { logoutHint: 'alice@contoso.com', clientId: 'client-1', postLogoutRedirectUri: 'https://chat.example.com/', maxUrlLength: DEFAULT_MAX_LOGOUT_URL_LENGTH }

t.test('id_token_hint when it fits', async t => {
  const url = endSessionUrl(oidc, { ...base, idToken: 'a.b.c' })
  t.equal(url?.searchParams.get('id_token_hint'), 'a.b.c')
  t.equal(url?.searchParams.get('post_logout_redirect_uri'), 'https://chat.example.com/')
})

t.test('logout_hint + client_id when the URL would be too long for Entra (AADSTS90015)', async t => {
  t.equal(DEFAULT_MAX_LOGOUT_URL_LENGTH, 2000, "LibreChat's default")
  const url = endSessionUrl(oidc, { ...base, idToken: 'x'.repeat(2500) })
  t.equal(url?.searchParams.get('id_token_hint'), null)
  t.equal(url?.searchParams.get('logout_hint'), 'alice@contoso.com')
  t.equal(url?.searchParams.get('client_id'), 'client-1')
  t.ok((url?.href.length ?? 0) <= DEFAULT_MAX_LOGOUT_URL_LENGTH)
})

t.test('OPENID_MAX_LOGOUT_URL_LENGTH moves the limit, which is inclusive as in LibreChat', async t => {
  const full = endSessionUrl(oidc, { ...base, idToken: 'x'.repeat(500) })
  const length = full?.href.length ?? 0
  t.equal(full?.searchParams.get('id_token_hint'), 'x'.repeat(500), 'fits under the default')
  t.equal(endSessionUrl(oidc, { ...base, idToken: 'x'.repeat(500), maxUrlLength: length })?.searchParams.get('id_token_hint'), 'x'.repeat(500), 'exactly the limit: still the ID token')
  const over = endSessionUrl(oidc, { ...base, idToken: 'x'.repeat(500), maxUrlLength: length - 1 })
  t.equal(over?.searchParams.get('id_token_hint'), null, 'one character over: the hint instead')
  t.equal(over?.searchParams.get('logout_hint'), 'alice@contoso.com')
  t.equal(endSessionUrl(oidc, { ...base, idToken: 'x'.repeat(2500), maxUrlLength: 8000 })?.searchParams.get('id_token_hint'), 'x'.repeat(2500), 'a larger limit keeps a long ID token')
})

t.test('no end-session endpoint, no URL', async t => {
  t.equal(endSessionUrl(new Configuration({ issuer: 'https://x' }, 'c'), { ...base, idToken: 'a', logoutHint: undefined, postLogoutRedirectUri: 'https://x/' }), undefined)
})
