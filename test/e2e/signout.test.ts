// Sign-out, with and without Entra's end-session redirect.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
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
  t.equal(out.status, 200)
  t.match(out.headers.get('set-cookie') ?? '', /entra-gw=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/)
  t.match(await out.text(), /signed out/)
  t.equal(store.size, 0, 'gone from the store')
  const after = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(after.status, 401)
  const line = stack.logs.find(l => l.event === 'sign_out')
  t.ok(typeof line?.user === 'string' && line.user !== '', 'the sign-out is logged with the user id')
})

t.test('with OPENID_USE_END_SESSION_ENDPOINT the IdP session ends too', async t => {
  const stack = await startStack({ env: { OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const out = await browser.request(`${stack.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: stack.url } })
  t.equal(out.status, 303)
  const to = new URL(out.headers.get('location') ?? '')
  t.ok(to.href.startsWith(stack.idp.origin), 'to the IdP')
  t.ok(to.searchParams.get('id_token_hint'))
  t.equal(to.searchParams.get('post_logout_redirect_uri'), `${stack.url}/`, 'DOMAIN_CLIENT by default')

  const s2 = await startStack({ env: { OPENID_USE_END_SESSION_ENDPOINT: 'true', OPENID_POST_LOGOUT_REDIRECT_URI: 'http://127.0.0.1:1/bye' } })
  t.teardown(() => s2.close())
  const b2 = new Browser()
  await signIn(b2, `${s2.url}/`, 'alice', 'alice')
  const out2 = await b2.request(`${s2.url}/oauth2/sign_out`, { method: 'POST', headers: { origin: s2.url } })
  t.equal(new URL(out2.headers.get('location') ?? '').searchParams.get('post_logout_redirect_uri'), 'http://127.0.0.1:1/bye')
})
