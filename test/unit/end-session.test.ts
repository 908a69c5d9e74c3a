import t from 'tap'
import { Configuration } from 'openid-client'
import { endSessionUrl, MAX_END_SESSION_URL_LENGTH } from '../../src/oidc/flow.js'

const server = { issuer: 'https://login.microsoftonline.com/t/v2.0', end_session_endpoint: 'https://login.microsoftonline.com/t/oauth2/v2.0/logout' }
const oidc = new Configuration(server, 'client-1')

t.test('id_token_hint when it fits', async t => {
  const url = endSessionUrl(oidc, { idToken: 'a.b.c', logoutHint: 'alice@contoso.com', clientId: 'client-1', postLogoutRedirectUri: 'https://chat.example.com/' })
  t.equal(url?.searchParams.get('id_token_hint'), 'a.b.c')
  t.equal(url?.searchParams.get('post_logout_redirect_uri'), 'https://chat.example.com/')
})

t.test('logout_hint + client_id when the URL would be too long for Entra (AADSTS90015)', async t => {
  const url = endSessionUrl(oidc, { idToken: 'x'.repeat(2500), logoutHint: 'alice@contoso.com', clientId: 'client-1', postLogoutRedirectUri: 'https://chat.example.com/' })
  t.equal(url?.searchParams.get('id_token_hint'), null)
  t.equal(url?.searchParams.get('logout_hint'), 'alice@contoso.com')
  t.equal(url?.searchParams.get('client_id'), 'client-1')
  t.ok((url?.href.length ?? 0) <= MAX_END_SESSION_URL_LENGTH)
})

t.test('no end-session endpoint, no URL', async t => {
  t.equal(endSessionUrl(new Configuration({ issuer: 'https://x' }, 'c'), { idToken: 'a', logoutHint: undefined, clientId: 'c', postLogoutRedirectUri: 'https://x/' }), undefined)
})
