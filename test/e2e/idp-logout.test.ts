// Sign-out at the IdP ends the gateway's sessions of that IdP session, and only those: the
// front channel (the IdP's signed-out page frames /oauth2/front_channel_logout?iss&sid) and
// the back channel (the IdP POSTs a signed logout token). Forged, replayed and malformed logout
// tokens are refused.
import t from 'tap'
import { generateKeyPair, SignJWT } from 'jose'
import { Browser, parseForms, signIn, submitForm } from '../helpers/browser.js'
import { startStack, CLIENT_ID, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis.js'

const api = { accept: 'application/json' }
const status = async (b: Browser, stack: Stack): Promise<number> => (await b.request(`${stack.url}/api/x`, { headers: api })).status

/** Four gateway sessions: two sharing alice's first IdP session, alice in another browser, bob. */
async function sessions (stack: Stack): Promise<{ a1: Browser, a2: Browser, b: Browser, bob: Browser }> {
  const a1 = new Browser()
  await signIn(a1, `${stack.url}/`, 'alice', 'alice')
  // A second gateway session in the same IdP session (another tab's app, single sign-on): the
  // IdP's cookies, not the gateway's.
  const a2 = new Browser()
  const idpHost = new URL(stack.idp.origin).host
  a2.jar.set(idpHost, new Map(a1.jar.get(idpHost)))
  const sso = await a2.follow(`${stack.url}/`)
  if (sso.response.status !== 200) throw new Error(`single sign-on answered ${sso.response.status}`)
  const b = new Browser()
  await signIn(b, `${stack.url}/`, 'alice', 'alice')
  const bob = new Browser()
  await signIn(bob, `${stack.url}/`, 'bob', 'bob')
  for (const x of [a1, a2, b, bob]) if (await status(x, stack) !== 200) throw new Error('not signed in')
  return { a1, a2, b, bob }
}

/** The user signs out at the IdP itself (its own sign-out page, confirmed). */
async function signOutAtIdp (browser: Browser, stack: Stack): Promise<Response> {
  const start = await browser.follow(`${stack.idp.issuer}/session/end`)
  const form = parseForms(await start.response.text(), start.chain[start.chain.length - 1] ?? '').find(f => 'xsrf' in f.fields)
  if (form === undefined) throw new Error('no sign-out form at the IdP')
  return (await submitForm(browser, form)).response
}

t.test('front channel: the IdP frames the logout URL; that IdP session\'s gateway sessions end, others stay', async t => {
  const stack = await startStack({ client: origin => ({ frontchannel_logout_uri: `${origin}/oauth2/front_channel_logout` }) })
  t.teardown(() => stack.close())
  const { a1, a2, b, bob } = await sessions(stack)
  const page = await (await signOutAtIdp(a1, stack)).text()
  const frames = [...page.matchAll(/<iframe[^>]*src="([^"]+)"/g)].map(m => (m[1] ?? '').replace(/&(amp|#38);/g, '&'))
  t.equal(frames.length, 1, 'one frame: the gateway\'s front-channel URL')
  const url = new URL(frames[0] ?? '')
  t.equal(url.origin + url.pathname, `${stack.url}/oauth2/front_channel_logout`)
  t.equal(url.searchParams.get('iss'), stack.idp.issuer)
  t.ok(url.searchParams.get('sid'))
  // Loaded inside the IdP's page: a third-party frame, so no gateway cookie comes with it.
  const res = await fetch(url)
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  const csp = res.headers.get('content-security-policy') ?? ''
  t.match(csp, new RegExp(`frame-ancestors ${stack.idp.origin.replace(/[.]/g, '\\.')}(;|$)`), 'only the IdP may frame it')
  t.notMatch(csp, /frame-ancestors[^;]*(\*|'self'|'none')/)
  t.equal(res.headers.get('x-frame-options'), null)
  t.equal(await status(a1, stack), 401, 'the browser that signed out')
  t.equal(await status(a2, stack), 401, 'another gateway session of the same IdP session')
  t.equal(await status(b, stack), 200, 'the same user\'s other IdP session stays')
  t.equal(await status(bob, stack), 200, 'another user stays')
  const nav = await a1.request(`${stack.url}/c/1`)
  t.equal(nav.status, 302, 'a navigation signs in again')
  t.ok(stack.logs.some(l => l.event === 'idp_logout' && l.channel === 'front' && l.sessions === 2))
  // The gateway's other pages still refuse every frame.
  const other = await fetch(`${stack.url}/oauth2/signed_out`)
  t.match(other.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/)
})

t.test('front channel: Entra\'s form without iss; another issuer, or no sid, is refused', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const a = new Browser()
  await signIn(a, `${stack.url}/`, 'alice', 'alice')
  const bob = new Browser()
  await signIn(bob, `${stack.url}/`, 'bob', 'bob')
  const sid = (await stack.store.get(decodeURIComponent(a.cookie(stack.url, stack.config.cookieName) ?? '').replace(/\.[^.]*$/, '')))?.data.user?.sid
  t.ok(sid, 'the session keeps the ID token\'s sid')
  const base = `${stack.url}/oauth2/front_channel_logout`
  t.equal((await fetch(`${base}?iss=${encodeURIComponent('https://evil.example/x/v2.0')}&sid=${encodeURIComponent(sid ?? '')}`)).status, 400, 'another issuer')
  t.equal((await fetch(`${base}?iss=${encodeURIComponent(stack.idp.issuer)}`)).status, 400, 'no sid')
  t.equal(await status(a, stack), 200, 'nothing ended by refused requests')
  t.equal((await fetch(`${base}?sid=unknown-sid`)).status, 200, 'an unknown sid ends nothing')
  t.equal((await fetch(`${base}?sid=${encodeURIComponent(sid ?? '')}`)).status, 200)
  t.equal(await status(a, stack), 401, 'ended by sid alone, as Entra sends it')
  t.equal(await status(bob, stack), 200)
})

for (const storeKind of ['memory', 'redis'] as const) {
  t.test(`back channel (${storeKind} store): the IdP's logout token ends that IdP session's gateway sessions`, async t => {
    const env: Record<string, string> = {}
    if (storeKind === 'redis') {
      const redis = await startRedis()
      t.teardown(() => redis.stop())
      Object.assign(env, { SESSION_STORE: 'redis', REDIS_URL: redis.url })
    }
    const stack = await startStack({ env, client: origin => ({ backchannel_logout_uri: `${origin}/oauth2/back_channel_logout` }) })
    t.teardown(() => stack.close())
    const { a1, a2, b, bob } = await sessions(stack)
    const out = await signOutAtIdp(a1, stack)
    t.equal(out.status, 200)
    t.equal(await status(a1, stack), 401)
    t.equal(await status(a2, stack), 401)
    t.equal(await status(b, stack), 200)
    t.equal(await status(bob, stack), 200)
    t.ok(stack.logs.some(l => l.event === 'idp_logout' && l.channel === 'back' && l.sessions === 2), 'delivered and acted on')
  })
}

t.test('back channel: forged, replayed and malformed logout tokens are refused', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const a = new Browser()
  await signIn(a, `${stack.url}/`, 'alice', 'alice')
  const user = (await stack.store.get(decodeURIComponent(a.cookie(stack.url, stack.config.cookieName) ?? '').replace(/\.[^.]*$/, '')))?.data.user
  const now = Math.floor(Date.now() / 1000)
  const good = { iss: stack.idp.issuer, aud: CLIENT_ID, iat: now, exp: now + 120, jti: 'jti-1', sid: user?.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }
  const post = async (token: string): Promise<Response> => await fetch(`${stack.url}/oauth2/back_channel_logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) })
  const refused = async (token: string, why: string): Promise<void> => {
    const res = await post(token)
    t.equal(res.status, 400, why)
    const body = await res.json() as Record<string, string>
    t.equal(body.error, 'invalid_request')
    t.type(body.error_description, 'string')
  }
  const other = await generateKeyPair('RS256')
  await refused(await new SignJWT(good).setProtectedHeader({ alg: 'RS256', kid: 'forged' }).sign(other.privateKey), 'signed with another key')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j2', aud: 'another-client' }), 'another audience')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j3', iss: 'https://evil.example/v2.0' }), 'another issuer')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j4', events: undefined }), 'no logout event (an ID token)')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j5', nonce: 'n' }), 'a nonce')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j6', sid: undefined }), 'neither sid nor sub')
  await refused(await stack.idp.signJwt({ ...good, jti: 'j7', iat: now - 3600, exp: now + 60 }), 'issued too long ago')
  await refused(await stack.idp.signJwt({ ...good, jti: undefined }), 'no jti')
  const bare = await fetch(`${stack.url}/oauth2/back_channel_logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
  t.equal(bare.status, 400, 'no token at all')
  t.equal(await status(a, stack), 200, 'nothing ended so far')
  const token = await stack.idp.signJwt(good)
  const ok = await post(token)
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('cache-control'), 'no-store')
  t.equal(await status(a, stack), 401, 'a valid token ends the session')
  await refused(token, 'the same token again (jti replay)')
})
