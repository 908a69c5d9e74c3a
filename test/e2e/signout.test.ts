// Sign-out, with and without Entra's end-session redirect.
import t, { type Test } from 'tap'
import { Browser, parseForms, signIn, submitForm } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { MemoryStore } from '../../src/session/memory-store.js'

t.test('sign-out ends the session in the store and clears the cookie', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  // The default store of the stack: the memory store, whose size says how many sessions it holds.
  const store = stack.store as MemoryStore
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal(store.size, 1)

  const page = await browser.request(`${stack.url}/oauth2/sign_out`)
  t.equal(page.status, 200)
  t.match(await page.text(), /<form method="post" action="\/oauth2\/sign_out">/)

  const cross = await browser.request(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: 'https://evil.example' } })
  t.equal(cross.status, 403, 'a cross-site POST does not sign out')
  const noOrigin = await fetch(`${stack.url}/oauth2/sign_out`, { method: 'POST', redirect: 'manual', headers: { cookie: `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}` } })
  t.equal(noOrigin.status, 403, 'without Origin or Sec-Fetch-Site it is refused')
  t.equal(store.size, 1)

  const crossSite = await browser.request(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: 'null', 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
  t.equal(crossSite.status, 403, 'Sec-Fetch-Site cross-site is refused')
  t.equal(store.size, 1)

  // What Chromium sends for the page's own form under Referrer-Policy: no-referrer.
  const out = await browser.request(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: 'null', 'sec-fetch-site': 'same-origin', 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
  t.equal(out.status, 303)
  t.equal(out.headers.get('location'), `${stack.url}/oauth2/signed_out`, "to the gateway's signed-out page")
  t.match(out.headers.get('set-cookie') ?? '', /entra-gw=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/)
  t.equal(store.size, 0, 'gone from the store')
  const after = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(after.status, 401)
  const line = stack.logs.find(l => l.event === 'sign_out')
  t.ok(typeof line?.user === 'string' && line.user !== '', 'the sign-out is logged with the user id')
})

/** The gateway's signed-out page: says so, offers to sign in again, starts nothing. */
async function assertSignedOutPage (t: Test, response: Response, url: string): Promise<void> {
  t.equal(response.status, 200, `${url}: 200`)
  const html = await response.text()
  t.match(html, /<h1>You are signed out<\/h1>/)
  t.match(html, /<a class="button" id="sign-in" href="\/oauth2\/sign_in">Sign in again<\/a>/)
  t.same(response.headers.getSetCookie(), [], 'no cookie: no sign-in was started')
}

t.test('with OPENID_USE_END_SESSION_ENDPOINT the IdP session ends too, and the user lands on the signed-out page', async t => {
  const stack = await startStack({ env: { OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const out = await browser.request(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: stack.url } })
  t.equal(out.status, 303)
  const to = new URL(out.headers.get('location') ?? '')
  t.ok(to.href.startsWith(stack.idp.origin), 'to the IdP')
  t.ok(to.searchParams.get('id_token_hint'))
  t.equal(to.searchParams.get('post_logout_redirect_uri'), `${stack.url}/oauth2/signed_out`, "the gateway's signed-out page by default")

  // Through the IdP's end-session page and back, as a browser goes.
  const idpPage = await browser.follow(to.href)
  const html = await idpPage.response.text()
  const form = parseForms(html, idpPage.chain[idpPage.chain.length - 1] ?? '').find(f => f.action.startsWith(stack.idp.origin))
  if (form === undefined) throw new Error(`no end-session form at the IdP: ${html.slice(0, 300)}`)
  const back = await submitForm(browser, form)
  const landed = back.chain[back.chain.length - 1] ?? ''
  t.equal(new URL(landed).origin + new URL(landed).pathname, `${stack.url}/oauth2/signed_out`, 'back on the signed-out page')
  await assertSignedOutPage(t, back.response, landed)
  t.notOk(back.chain.some(u => u.includes('/authorize') || u.includes('/interaction/')), 'no new sign-in on the way')

  // The IdP session ended: "Sign in again" shows the IdP's login form.
  const again = await browser.follow(`${stack.url}/oauth2/sign_in`)
  t.match(again.chain[again.chain.length - 1], `${stack.idp.origin}/interaction/`, 'the login form, not a silent sign-in')
  await again.response.body?.cancel()
})

t.test('without the end-session endpoint the user lands on the signed-out page too', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const out = await browser.follow(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: stack.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
  t.same(out.chain, [`${stack.url}/oauth2/sign_out`, `${stack.url}/oauth2/signed_out`])
  await assertSignedOutPage(t, out.response, `${stack.url}/oauth2/signed_out`)
  t.equal((await browser.request(`${stack.url}/headers`, { headers: { accept: 'application/json' } })).status, 401, 'signed out')

  // The page is public and reads no session: a stranger gets the same page, and no sign-in.
  await assertSignedOutPage(t, await new Browser().request(`${stack.url}/oauth2/signed_out?state=x`), 'a stranger')
})

t.test('an explicit OPENID_POST_LOGOUT_REDIRECT_URI still wins, with and without end-session', async t => {
  const s1 = await startStack({ env: { OPENID_USE_END_SESSION_ENDPOINT: 'true', OPENID_POST_LOGOUT_REDIRECT_URI: 'http://127.0.0.1:1/bye' } })
  t.teardown(() => s1.close())
  const b1 = new Browser()
  await signIn(b1, `${s1.url}/`, 'alice', 'alice')
  const out1 = await b1.request(`${s1.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: s1.url } })
  t.equal(new URL(out1.headers.get('location') ?? '').searchParams.get('post_logout_redirect_uri'), 'http://127.0.0.1:1/bye')

  // Registered at the IdP (the stack registers <gateway>/bye): followed through the IdP, the browser ends there.
  const s2 = await startStack({ env: { OPENID_USE_END_SESSION_ENDPOINT: 'true' }, envAt: origin => ({ OPENID_POST_LOGOUT_REDIRECT_URI: `${origin}/bye` }) })
  t.teardown(() => s2.close())
  const b2 = new Browser()
  await signIn(b2, `${s2.url}/`, 'alice', 'alice')
  b2.stopBefore = `${s2.url}/bye`
  const out2 = await b2.follow(`${s2.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: s2.url, 'content-type': 'application/x-www-form-urlencoded' }, body: '' })
  const form = parseForms(await out2.response.text(), out2.chain[out2.chain.length - 1] ?? '').find(f => f.action.startsWith(s2.idp.origin))
  if (form === undefined) throw new Error('no end-session form at the IdP')
  const back = await submitForm(b2, form)
  t.match(back.chain[back.chain.length - 1], `${s2.url}/bye`, 'at the configured page, not the signed-out one')

  const s3 = await startStack({ env: { OPENID_POST_LOGOUT_REDIRECT_URI: 'https://intranet.example.com/bye' } })
  t.teardown(() => s3.close())
  const b3 = new Browser()
  await signIn(b3, `${s3.url}/`, 'alice', 'alice')
  const out3 = await b3.request(`${s3.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: s3.url } })
  t.equal(out3.status, 303)
  t.equal(out3.headers.get('location'), 'https://intranet.example.com/bye', 'without end-session: straight there')
  // The sign-out form's redirect there is allowed by the pages' CSP (form-action).
  const page = await b3.request(`${s3.url}/oauth2/sign_out`)
  t.match(page.headers.get('content-security-policy') ?? '', /form-action 'self' [^;]*https:\/\/intranet\.example\.com/)
})

t.test('the sign-out page says so to someone not signed in', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const stranger = await new Browser().request(`${stack.url}/oauth2/sign_out`)
  t.equal(stranger.status, 200)
  const html = await stranger.text()
  t.match(html, /<h1>You are not signed in<\/h1>/)
  t.notMatch(html, /Sign out of this application\?/, 'not asked to sign out')
  t.notMatch(html, /<form/, 'no sign-out form')
  t.match(html, /href="\/oauth2\/sign_in"/, 'a way to sign in')
  t.same(stranger.headers.getSetCookie(), [], 'and nothing started')

  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const signedIn = await (await browser.request(`${stack.url}/oauth2/sign_out`)).text()
  t.match(signedIn, /Sign out of this application\?/, 'a signed-in user is asked')
  t.match(signedIn, /<form method="post" action="\/oauth2\/sign_out">/)
})
