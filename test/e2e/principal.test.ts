// One identity per request, kept small: what a signed-in session holds, and the one shape of
// the gateway's own errors.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { sessionId } from '../helpers/session.js'
import type { TokenSet } from '../../src/tokens/jar.js'

const json = { accept: 'application/json' }

t.test('the default configuration keeps only the refresh token, sealed as bytes', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const sid = sessionId(browser, stack.url, stack.config.cookieName)
  const raw = await stack.store.getAux(`tokens:${sid}`)
  t.ok(Buffer.isBuffer(raw), 'the side entry is bytes, not base64 text')
  const kept = stack.app.sealer.openJson(raw, `tokens:${sid}`) as TokenSet
  t.type(kept.refreshToken, 'string', 'the refresh token: refresh needs it')
  t.equal(kept.idToken, undefined, 'no ID token: only sign-out with the end-session endpoint sends one')
  t.equal(kept.accessToken, undefined, 'no access token: nothing forwards it or calls Graph with it')
  t.equal(kept.loginHint, undefined)
  const stored = await stack.store.get(sid)
  t.equal(stored?.data.sealed, undefined, 'no access token sealed in the session either')
  t.equal((stored?.data.user as unknown as Record<string, unknown>).forward, undefined, 'no pre-encoded headers in the session')

  // Refreshing keeps the same small shape, and the upstream still gets the user.
  const before = stack.idp.tokenRequests.refresh_token
  await stack.store.set(sid, { ...stored!, data: { ...stored!.data, accessExp: Math.floor(Date.now() / 1000) - 1 } })
  const res = await browser.request(`${stack.url}/headers`, { headers: json })
  t.equal(res.status, 200)
  t.equal((await res.json() as { headers: Record<string, string> }).headers['x-forwarded-email'], 'alice@contoso.example')
  t.equal(stack.idp.tokenRequests.refresh_token, before + 1, 'one refresh happened')
  const after = stack.app.sealer.openJson(await stack.store.getAux(`tokens:${sid}`), `tokens:${sid}`) as TokenSet
  t.type(after.refreshToken, 'string')
  t.equal(after.idToken, undefined)
  t.equal(after.accessToken, undefined)
})

t.test('with forwarding and end-session, exactly what they need is kept', async t => {
  const stack = await startStack({ env: { FORWARD_ACCESS_TOKEN: 'true', OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const sid = sessionId(browser, stack.url, stack.config.cookieName)
  const kept = stack.app.sealer.openJson(await stack.store.getAux(`tokens:${sid}`), `tokens:${sid}`) as TokenSet
  t.type(kept.idToken, 'string', 'the ID token, for id_token_hint')
  t.type(kept.loginHint, 'string', "the login_hint claim, Entra's logout_hint")
  t.equal(kept.accessToken, undefined, 'the forwarded access token lives sealed in the session, not twice')
  const res = await browser.request(`${stack.url}/headers`, { headers: json })
  t.match((await res.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token'], /^eyJ/)
})

t.test("the gateway's own errors have one JSON shape", async t => {
  const stack = await startStack({ env: { BEARER_AUTH: 'true', GRAPH_SCOPES: 'User.Read' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const answers: Array<[string, Response]> = [
    ['anonymous API call', await fetch(`${stack.url}/api/convos`, { headers: json })],
    ['bad bearer token', await fetch(`${stack.url}/api/convos`, { headers: { ...json, authorization: `Bearer ${await stack.idp.signJwt({ iss: stack.idp.issuer, aud: stack.config.clientId, exp: 1 })}` } })],
    ['userinfo without a session', await fetch(`${stack.url}/oauth2/userinfo`, { headers: json })],
    ['token route from another site', await fetch(`${stack.url}/oauth2/token?scope=x`, { headers: json })]
  ]
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const xhr = { ...json, 'x-requested-with': 'XMLHttpRequest' }
  answers.push(['a scope not on the list', await browser.request(`${stack.url}/oauth2/token?scope=https://evil.example/x`, { headers: xhr })])
  answers.push(['no scope asked for', await browser.request(`${stack.url}/oauth2/token`, { headers: xhr })])
  for (const [what, res] of answers) {
    t.ok(res.status >= 400 && res.status < 600, `${what}: an error status (${res.status})`)
    t.match(res.headers.get('content-type'), /^application\/json/, `${what}: JSON`)
    t.equal(res.headers.get('cache-control'), 'no-store', `${what}: not cached`)
    const body = await res.json() as Record<string, unknown>
    t.type(body.error, 'string', `${what}: a stable code`)
    t.type(body.message, 'string', `${what}: plain words`)
    t.type(body.request_id, 'string', `${what}: the request id`)
  }
})
