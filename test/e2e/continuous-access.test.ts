// Continuous access: when the token endpoint or Graph says the user's session with Microsoft was
// revoked (invalid_grant with AADSTS50173 and kin, a claims challenge), the gateway session ends
// at once, the log says which code, and the revoked refresh token is never tried again.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { DEMO_USERS } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const xhr = { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' }
const SP = 'https://contoso.sharepoint.com/AllSites.Read'

t.test('a revoked grant at a per-resource token ends the session; it is not tried again', async t => {
  const stack = await startStack({ graph: {}, env: { OPENID_GRAPH_SCOPES: 'User.Read', ENABLE_SHAREPOINT_FILEPICKER: 'true', SHAREPOINT_BASE_URL: 'https://contoso.sharepoint.com', SHAREPOINT_PICKER_SHAREPOINT_SCOPE: SP, SHAREPOINT_PICKER_GRAPH_SCOPE: 'Files.Read.All' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  stack.idp.revokeRefreshTokens('alice')
  const before = stack.idp.tokenRequests.refresh_token
  const res = await browser.request(`${stack.url}/oauth2/token?scope=${encodeURIComponent(SP)}`, { headers: xhr })
  t.equal(res.status, 401)
  const body = await res.json() as Record<string, string>
  t.equal(body.error, 'session_expired')
  t.equal(body.idp_error, 'AADSTS50173')
  t.equal(stack.idp.tokenRequests.refresh_token - before, 1, 'one try')
  t.ok(stack.logs.some(l => l.event === 'session_end' && l.idpError === 'AADSTS50173'), 'the log names the code')
  const again = await browser.request(`${stack.url}/oauth2/token?scope=${encodeURIComponent(SP)}`, { headers: xhr })
  t.equal(again.status, 401)
  t.equal(stack.idp.tokenRequests.refresh_token - before, 1, 'the revoked refresh token is not tried again')
  const nav = await browser.request(`${stack.url}/c/1`)
  t.equal(nav.status, 302, 'a navigation signs in again')
  t.ok((nav.headers.get('location') ?? '').startsWith(stack.idp.origin))
})

t.test("Graph's claims challenge ends the session (directory search)", async t => {
  const stack = await startStack({
    graph: { users: [{ id: alice.oid, displayName: alice.name, mail: alice.email, userPrincipalName: alice.preferredUsername }] },
    env: { OPENID_GRAPH_SCOPES: 'User.Read,People.Read,User.ReadBasic.All', OPENID_REUSE_TOKENS: 'true', USE_ENTRA_ID_FOR_PEOPLE_SEARCH: 'true' }
  })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal((await browser.request(`${stack.url}/oauth2/directory/search?q=al&type=user`, { headers: xhr })).status, 200)
  stack.graph?.challenge(1)
  const res = await browser.request(`${stack.url}/oauth2/directory/search?q=al&type=user`, { headers: xhr })
  t.equal(res.status, 401)
  t.equal((await res.json() as Record<string, string>).error, 'session_expired')
  t.ok(stack.logs.some(l => l.event === 'session_end' && l.idpError === 'insufficient_claims'), 'the log names the claims challenge')
  const api = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401, 'the session is gone')
})

t.test("Graph's claims challenge at a refresh (group overage) ends the session instead of refusing for now", async t => {
  const groups = Array.from({ length: 3 }, (_, i) => `0000000${i}-aaaa-4bbb-8ccc-000000000000`)
  const overage = { ...alice, groups: undefined, extraClaims: { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.windows.net/x/getMemberObjects' } } } }
  const stack = await startStack({ users: [overage], graph: { memberOf: { [alice.oid]: groups } } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal((await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })).status, 200)
  stack.graph?.challenge(1)
  await editSession(stack.store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 1 })
  const res = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 401)
  t.equal((await res.json() as Record<string, string>).error, 'session_expired')
  t.ok(stack.logs.some(l => l.event === 'session_end' && l.idpError === 'insufficient_claims'))
})

t.test('a token endpoint asking for interaction at refresh ends the session', async t => {
  // Conditional Access wanting MFA answers interaction_required (AADSTS50076) to a refresh.
  const { classifyRefreshError, revocationOf } = await import('../../src/tokens/jar.js')
  const { ResponseBodyError } = await import('openid-client')
  const body = { error: 'interaction_required', error_description: 'AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.' }
  const err = new ResponseBodyError('server responded with an error in the response body', { cause: body, response: new Response(JSON.stringify(body), { status: 400 }) })
  t.equal(revocationOf(classifyRefreshError(err)), 'AADSTS50076')
  const idpDown = new ResponseBodyError('x', { cause: { error: 'temporarily_unavailable' }, response: new Response('{}', { status: 503 }) })
  t.equal(revocationOf(classifyRefreshError(idpDown)), undefined, 'an outage is not a revocation')
})
