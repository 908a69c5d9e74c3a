// The whole sign-in over real HTTP: browser → gateway → Entra-shaped IdP → gateway → upstream.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, CLIENT_SECRET, SESSION_SECRET } from '../helpers/stack.js'
import { DEMO_USERS } from '../../dev/idp.js'
import { sessionKeys } from '../../src/session/keys.js'
import { sessionId } from '../helpers/session.js'
import type { TokenSet } from '../../src/tokens/jar.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!

t.test('sign-in, return path and the headers the upstream receives', async t => {
  // Every level on: no secret may reach the logs at any of them.
  // End-session on, so the gateway keeps the ID token (id_token_hint) and the test can look for it.
  const stack = await startStack({ env: { LOG_LEVEL: 'trace', OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = new Browser()

  // The first hop: a navigation without a session goes to the IdP with PKCE, state, nonce.
  const first = await browser.request(`${stack.url}/c/deep?x=1`)
  t.equal(first.status, 302)
  const authz = new URL(first.headers.get('location') ?? '')
  t.equal(authz.origin + authz.pathname.replace(/\/auth$/, ''), stack.idp.origin + authz.pathname.replace(/\/auth$/, ''))
  t.equal(authz.searchParams.get('response_type'), 'code')
  t.equal(authz.searchParams.get('code_challenge_method'), 'S256')
  t.match(authz.searchParams.get('code_challenge'), /^[\w-]{43}$/)
  t.ok(authz.searchParams.get('state'))
  t.ok(authz.searchParams.get('nonce'))
  t.equal(authz.searchParams.get('redirect_uri'), `${stack.url}/oauth/openid/callback`)
  t.equal(authz.searchParams.get('scope'), 'openid profile email offline_access', 'offline_access always: refresh and re-checks need it')

  const { response, chain } = await signIn(browser, `${stack.url}/c/deep?x=1`, 'alice', 'alice')
  t.equal(response.status, 200)
  t.equal(chain.at(-1), `${stack.url}/c/deep?x=1`, 'back on the deep link')

  const res = await browser.request(`${stack.url}/headers`, {
    headers: {
      accept: 'application/json',
      authorization: 'Bearer librechat-own-jwt',
      cookie: `refreshToken=lc-refresh; ${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}; token_provider=openid`,
      'x-forwarded-user': 'mallory',
      X_Forwarded_User: 'mallory',
      'x-forwarded-email': 'mallory@evil.example',
      'X-Forwarded-Groups': 'admins',
      'x-forwarded-access-token': 'forged',
      'x-forwarded-for': '6.6.6.6'
    }
  })
  t.equal(res.status, 200)
  t.notOk(res.headers.get('set-cookie'), 'no Set-Cookie on a proxied request')
  const seen = await res.json() as { headers: Record<string, string> }
  const h = seen.headers
  t.equal(h['x-forwarded-user'], alice.oid)
  t.equal(h['x-forwarded-email'], alice.email)
  t.equal(h['x-forwarded-preferred-username'], alice.preferredUsername)
  t.equal(h['x-forwarded-name'], "UTF-8''" + encodeURIComponent(alice.name), 'non-ASCII name in the documented encoding')
  t.equal(decodeURIComponent((h['x-forwarded-name'] ?? '').slice(7)), alice.name)
  t.equal(h['x-forwarded-groups'], (alice.groups ?? []).join(','))
  t.equal(h['x-forwarded-roles'], (alice.roles ?? []).join(','))
  t.equal(h['x-forwarded-tenant-id'], stack.idp.tenantId)
  t.equal(h.x_forwarded_user, undefined, 'underscore spelling stripped')
  t.equal(h['x-forwarded-access-token'], undefined)
  t.equal(h['x-forwarded-for'], '127.0.0.1', 'client X-Forwarded-For not trusted')
  t.equal(h.authorization, 'Bearer librechat-own-jwt', "the app's own Authorization passes unchanged")
  t.equal(h.cookie, 'refreshToken=lc-refresh; token_provider=openid', 'other cookies pass, the gateway cookie does not')

  const me = await browser.request(`${stack.url}/oauth2/userinfo`, { headers: { accept: 'application/json' } })
  const info = await me.json() as Record<string, unknown>
  t.equal(info.oid, alice.oid)
  t.equal(info.name, alice.name)

  const signInLog = stack.logs.find(l => l.event === 'sign_in')
  t.equal(signInLog?.user, alice.oid)
  const raw = stack.rawLogs()
  const callback = new URL(chain.find(u => u.startsWith(`${stack.url}/oauth/openid/callback`)) ?? '')
  const code = callback.searchParams.get('code')
  t.ok(code !== null && code.length >= 20, 'the authorization code the IdP sent')
  const sid = sessionId(browser, stack.url, stack.config.cookieName)
  const tokens = stack.app.sealer.openJson(await stack.store.getAux(`tokens:${sid}`), `tokens:${sid}`) as TokenSet | undefined
  t.ok(tokens?.refreshToken, 'the tokens the IdP issued')
  const secrets = {
    'client secret': CLIENT_SECRET,
    'session secret': SESSION_SECRET,
    cookie: browser.cookie(stack.url, stack.config.cookieName),
    state: authz.searchParams.get('state'),
    nonce: authz.searchParams.get('nonce'),
    'authorization code': code,
    'ID token': tokens?.idToken,
    'refresh token': tokens?.refreshToken
  }
  // The access token is not kept in this configuration (nothing forwards it); it is a JWT,
  // which the last check looks for.
  t.equal(tokens?.accessToken, undefined, 'an access token nothing uses is not kept')
  for (const [name, secret] of Object.entries(secrets)) {
    t.ok(typeof secret === 'string' && secret.length >= 20 && !raw.includes(secret), `no ${name} in the logs`)
  }
  t.notOk(/eyJ[\w-]+\.eyJ/.test(raw), 'no JWT in the logs')
})

t.test('open redirects are refused after sign-in', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  for (const rd of ['//evil.example', '/\\evil.example', '/%5Cevil', 'https://evil.example', '/%2F%2Fevil.example', '/\t/evil.example']) {
    const browser = new Browser()
    const { chain } = await signIn(browser, `${stack.url}/oauth2/sign_in?rd=${encodeURIComponent(rd)}`, 'alice', 'alice')
    t.equal(chain.at(-1), `${stack.url}/`, `${JSON.stringify(rd)} falls back to /`)
  }
})

t.test('API calls without a session get 401 JSON, never a redirect', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const before = stack.upstream.requests.length
  const inits: RequestInit[] = [
    { method: 'GET', headers: { accept: 'application/json' } },
    { method: 'POST', headers: { accept: 'text/html', 'content-type': 'application/json' }, body: '{}' },
    { method: 'GET', headers: { accept: 'text/event-stream' } }
  ]
  for (const init of inits) {
    const res = await fetch(`${stack.url}/api/convos?x=1`, { ...init, redirect: 'manual' })
    t.equal(res.status, 401)
    const body = await res.json() as Record<string, string>
    t.equal(body.error, 'unauthenticated')
    t.equal(body.login_url, `${stack.url}/oauth2/sign_in?rd=${encodeURIComponent('/api/convos?x=1')}`)
  }
  t.equal(stack.upstream.requests.length, before, 'nothing reached the upstream')
})

t.test('forged, expired and replayed state are refused', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())

  // Forged: a state this browser never started.
  const b1 = new Browser()
  await b1.request(`${stack.url}/somewhere`)
  const forged = await b1.request(`${stack.url}/oauth/openid/callback?code=abc&state=forged-state`)
  t.equal(forged.status, 400)
  t.match(await forged.text(), /Try signing in again/)

  // Replayed: the callback URL of a completed sign-in, from another browser and from the same one.
  const b2 = new Browser()
  const { chain } = await signIn(b2, `${stack.url}/first`, 'alice', 'alice')
  const callbackUrl = chain.find(u => u.startsWith(`${stack.url}/oauth/openid/callback`))!
  t.ok(callbackUrl)
  const b3 = new Browser()
  await b3.request(`${stack.url}/other`) // has its own pending sign-in
  const replay = await b3.request(callbackUrl)
  t.equal(replay.status, 400, 'another browser cannot use it')
  const signIns = stack.logs.filter(l => l.event === 'sign_in').length
  const again = await b2.request(callbackUrl, { headers: { accept: 'application/json' } })
  t.equal(again.status, 200, 'for the signed-in browser it is an ordinary upstream request')
  t.equal(stack.logs.filter(l => l.event === 'sign_in').length, signIns, 'no second sign-in')

  // Expired: the transaction's clock runs out before the IdP answers.
  const b4 = new Browser()
  const start = await b4.request(`${stack.url}/late`)
  const state = new URL(start.headers.get('location') ?? '').searchParams.get('state') ?? ''
  // The transaction lives in the browser's sealed login cookie: open it, age it, seal it back.
  const sealer = sessionKeys([SESSION_SECRET]).sealer
  const loginCookie = stack.config.loginCookieName
  const pending = sealer.openJson(b4.cookie(stack.url, loginCookie), 'login-transactions') as Array<[string, { expiresAt: number }]>
  const entry = pending.find(([s]) => s === state)
  t.ok(entry, 'the transaction is in the login cookie, keyed by its state')
  entry![1].expiresAt = Date.now() - 1
  b4.setCookie(stack.url, loginCookie, sealer.sealJson(pending, 'login-transactions'))
  // Sign in at the IdP from the original authorization URL: the callback carries state S.
  const { response } = await signIn(b4, start.headers.get('location') ?? '', 'alice', 'alice')
  t.equal(response.status, 400)
  t.match(await response.text(), /expired/)
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'state_expired'))
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'state_unknown'))
})

t.test('cookies carry every flag; __Host- and Secure with an https DOMAIN_SERVER', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const res = await fetch(`${stack.url}/oauth2/sign_in?rd=/x`, { redirect: 'manual' })
  const cookie = res.headers.get('set-cookie') ?? ''
  t.match(cookie, /^entra-gw-login=/, 'a sign-in start sets only the short-lived login cookie')
  t.match(cookie, /Max-Age=600/)
  t.match(cookie, /HttpOnly/)
  t.match(cookie, /SameSite=Lax/)
  t.match(cookie, /Path=\//)

  const https = await startStack({ env: { DOMAIN_SERVER: 'https://chat.example.com' }, idp: stack.idp, upstream: stack.upstream })
  t.teardown(() => https.close())
  const res2 = await fetch(`${https.url}/oauth2/sign_in?rd=/x`, { redirect: 'manual' })
  const cookie2 = res2.headers.get('set-cookie') ?? ''
  t.match(cookie2, /^__Host-entra-gw-login=/)
  t.match(cookie2, /; Secure/)
  t.match(cookie2, /HttpOnly/)
  t.match(cookie2, /SameSite=Lax/)
  t.notMatch(cookie2, /Domain=/i)
  t.equal(new URL(res2.headers.get('location') ?? '').searchParams.get('redirect_uri'), 'https://chat.example.com/oauth/openid/callback', 'redirect_uri from DOMAIN_SERVER, never from Host')
})
