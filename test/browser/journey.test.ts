// The whole journey in a real browser (Debian's chromium driven by playwright-core), through
// the gateway, against the local IdP's real login form: a deep link, signing in, the identity
// the upstream receives, a streamed reply, signing out of the gateway and of the IdP, landing
// on the signed-out page, signing in again, and being refused as a user without the role; then
// the error pages.
// Every page is looked at the way a person would: what it says, and that it fits a phone (390 px)
// and a desktop (1280 px) without horizontal scrolling. A full-page screenshot of each page, in
// each of those widths and in dark mode, lands in test-artifacts/screenshots/ (kept by CI).
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { startStack } from '../helpers/stack.js'
import { launchChromium, screenshot } from '../helpers/chromium.js'
import { DEMO_USERS } from '../../dev/idp.js'
import { UNASSIGNED_USER } from '../../dev/idp/users.js'

const VARIANTS = [
  { suffix: 'desktop', width: 1280, height: 800, colorScheme: 'light' },
  { suffix: 'phone', width: 390, height: 844, colorScheme: 'light' },
  { suffix: 'phone-dark', width: 390, height: 844, colorScheme: 'dark' }
] as const

/**
 * Screenshots of the page as it is, at each width and scheme, each checked for horizontal
 * scrolling; the page is left at the desktop width in light mode.
 */
async function look (t: Test, page: Page, name: string): Promise<void> {
  for (const v of VARIANTS) {
    await page.setViewportSize({ width: v.width, height: v.height })
    await page.emulateMedia({ colorScheme: v.colorScheme })
    const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }))
    t.ok(scrollWidth <= innerWidth, `${name} at ${v.width} px${v.colorScheme === 'dark' ? ', dark' : ''}: no horizontal scroll (${scrollWidth} <= ${innerWidth})`)
    const { path, bytes } = await screenshot(page, `${name}-${v.suffix}`)
    t.ok(bytes > 0, `screenshot ${path}`)
  }
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1280, height: 800 })
}

const carol = UNASSIGNED_USER

const WAIT_MS = 15_000

t.test('deep link, sign-in, identity, stream, sign-out, sign-in again, refusal, error pages', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_ROLE: 'ChatUser', OPENID_USE_END_SESSION_ENDPOINT: 'true' }, users: [...DEMO_USERS, carol] })
  t.teardown(() => stack.close())
  const browser = await launchChromium({ viewport: { width: 1280, height: 800 } })
  t.teardown(() => browser.close())
  const { page, context } = browser
  page.setDefaultTimeout(WAIT_MS)
  page.setDefaultNavigationTimeout(WAIT_MS)
  const gateway = stack.url
  const cookieName = stack.config.cookieName

  /**
   * Clicks a sign-out button: the gateway must answer the browser's own form POST with a
   * redirect that ends at the IdP's end-session page. A refusal fails with what the page said.
   */
  const signOutTo = async (p: Page, button: string): Promise<void> => {
    const answered = p.waitForResponse(r => r.url() === `${gateway}/oauth2/sign_out` && r.request().method() === 'POST')
    await p.click(button)
    const response = await answered
    const status = response.status()
    if (status < 300 || status >= 400) {
      const said = (await response.text()).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim()
      t.fail(`the sign-out POST from a real browser answered ${status}: ${said}`)
      throw new Error('sign-out did not redirect')
    }
    await p.waitForURL(url => url.origin === stack.idp.origin)
  }
  const onIdpLoginForm = async (what: string): Promise<void> => {
    await page.waitForSelector('#login-form')
    t.ok(page.url().startsWith(`${stack.idp.origin}/interaction/`), `${what}: the IdP's login form (${page.url()})`)
  }
  const gatewayCookie = async (): Promise<string | undefined> =>
    (await context.cookies(gateway)).find(c => c.name === cookieName)?.value
  const mainText = async (): Promise<string> => (await page.textContent('main') ?? '').replace(/\s+/g, ' ')

  // --- A deep link, without a session: straight to the IdP's login form, which says who can sign in.
  const deepLink = `${gateway}/c/deep-link?x=1`
  await page.goto(deepLink)
  await onIdpLoginForm('a deep link without a session')
  const accounts = await page.textContent('#demo-users') ?? ''
  t.match(accounts, /alice.*app role ChatUser/s, 'the login page lists alice and what she shows')
  t.match(accounts, /bob.*no app role.*access-denied page/s, 'and bob')
  await look(t, page, '01-idp-login')

  // --- Sign in as alice: back on the deep link, query and all, with her identity upstream.
  await signInOnForm(page, 'alice', 'alice', url => url.href === deepLink)
  t.equal(page.url(), deepLink, 'landed on the deep link')
  await page.waitForSelector('#identity')
  t.match(await mainText(), 'GET /c/deep-link?x=1', 'the upstream served the deep link')
  t.equal(await page.textContent('#card-name'), 'Alice Zoë Ångström', 'the card: her decoded name')
  t.equal(await page.textContent('#card-email'), 'alice@contoso.example', 'her email')
  t.match(await page.textContent('#card-roles'), 'ChatUser', 'her roles')
  t.match(await page.textContent('#card-tenant'), stack.idp.tenantId, 'her tenant')
  t.equal(await identityValue(page, 'x-forwarded-name'), 'Alice Zoë Ångström', 'the decoded name header')
  t.equal(await identityValue(page, 'x-forwarded-email'), 'alice@contoso.example')
  t.equal(await identityValue(page, 'x-forwarded-roles'), 'ChatUser')
  t.equal(await identityValue(page, 'x-forwarded-tenant-id'), stack.idp.tenantId)
  t.match(await page.textContent('#jwt-verdict'), /signature valid \(keys from .*\/oauth2\/jwks\.json\)/, 'the identity JWT verified against the gateway keys')
  t.match(await page.textContent('#jwt-claims'), '"preferred_username": "alice@contoso.example"', 'and its claims shown')
  t.notOk(await page.isVisible('#identity details .long'), 'the long token is folded away')
  await look(t, page, '02-upstream-identity')
  await page.click('#identity details summary')
  t.ok(await page.isVisible('#identity details .long'), '"show" unfolds it, wrapped')
  await look(t, page, '02-upstream-identity-token-shown')
  const aliceSession = await gatewayCookie()
  t.ok(aliceSession, 'a gateway session cookie')

  // --- A streamed reply, seen: the stream page appends each event as it arrives.
  await page.click('#stream-link')
  await page.waitForSelector('#events li')
  await page.waitForFunction(() => document.getElementById('stream-status')?.textContent?.startsWith('done') === true)
  const arrivals = (await page.locator('#events li').allTextContents()).map(text => Number(/after (\d+) ms/.exec(text)?.[1]))
  t.equal(arrivals.length, 5, 'five events on the page')
  // The upstream sends them 50 ms apart: they must arrive spread out, not in one buffered lump.
  t.ok((arrivals[4] ?? 0) - (arrivals[0] ?? 0) >= 100, `events arrived as they were sent (${arrivals.join(', ')} ms)`)
  await look(t, page, '03-stream')
  const streamed = stack.upstream.requests.filter(r => r.url === '/api/agents/chat/stream/demo')
  t.equal(streamed.length, 1, 'one stream request reached the upstream')
  t.equal(streamed[0]?.headers['x-forwarded-user'], '3b8e6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b', 'as alice')

  // --- A deep link's #fragment survives a sign-in that needs no form (the IdP still knows the
  // user): every hop is a redirect, and a browser keeps the fragment across redirects.
  await context.clearCookies({ name: cookieName })
  await page.goto(`${gateway}/c/fragment?y=2#message-42`)
  await page.waitForURL(url => url.origin === gateway && url.pathname === '/c/fragment')
  t.equal(new URL(page.url()).hash, '#message-42', 'the fragment is still there after signing in')
  t.equal(new URL(page.url()).search, '?y=2', 'and the query')

  // --- Sign out: the gateway's confirmation page, then the IdP's, then back.
  await page.goto(`${gateway}/oauth2/sign_out`)
  await page.waitForSelector('form[action="/oauth2/sign_out"] button')
  t.match(await mainText(), 'Sign out', 'the confirmation asks')
  await look(t, page, '04-sign-out-confirmation')
  await signOutTo(page, 'form[action="/oauth2/sign_out"] button')
  await page.waitForSelector('#sign-out')
  t.match(await page.textContent('h1'), /Sign out/, "the IdP's end-session page")
  await look(t, page, '05-idp-sign-out')
  t.not(await gatewayCookie(), aliceSession, 'the gateway session is gone before the IdP is even asked')
  await page.click('#sign-out')

  // --- Back from the IdP on the gateway's signed-out page, which starts no sign-in; its
  // "Sign in again" leads to the IdP's login form (the IdP session ended too).
  await page.waitForURL(url => url.href.startsWith(`${gateway}/oauth2/signed_out`))
  t.match(await page.textContent('h1'), /You are signed out/, "the gateway's signed-out page")
  await look(t, page, '06-after-sign-out')
  await page.click('#sign-in')
  await onIdpLoginForm('"Sign in again" after signing out')

  // --- Asked to sign in again: a protected path leads to the IdP's login form too.
  const unauth = await context.request.get(`${gateway}/oauth2/userinfo`, { headers: { accept: 'application/json' } })
  t.equal(unauth.status(), 401, 'no identity any more')
  await page.goto(`${gateway}/c/another-chat`)
  await onIdpLoginForm('a protected path after signing out')

  // --- Bob signs in but lacks the role: a refusal that says why, and nothing proxied.
  const proxiedBefore = stack.upstream.requests.length
  const refusal = page.waitForResponse(r => r.url() === `${gateway}/c/another-chat` && r.status() !== 302)
  await signInOnForm(page, 'bob', 'bob', url => url.href === `${gateway}/c/another-chat`)
  t.equal((await refusal).status(), 403, 'HTTP 403')
  const text = await mainText()
  t.match(await page.textContent('h1'), /Access denied/)
  t.match(text, 'requires the role ChatUser', 'says which role is required')
  t.match(text, 'bob@contoso.example', 'says who is signed in')
  t.match(text, 'Ask your administrator', 'and who can fix it')
  t.equal(await page.title(), 'Access denied · LibreChat', 'a title that names the app once')
  t.equal(stack.upstream.requests.length, proxiedBefore, 'nothing was proxied for bob')
  await look(t, page, '07-access-denied')

  // --- The refusal's own sign-out button works in a real browser too (CSP form-action
  // allows the redirect to the IdP).
  await signOutTo(page, 'main form[action="/oauth2/sign_out"] button')
  await page.click('#sign-out')
  await page.waitForURL(url => url.href.startsWith(`${gateway}/oauth2/signed_out`))
  t.match(await page.textContent('h1'), /You are signed out/, 'bob too ends on the signed-out page')

  // --- The sign-out page, to someone no longer signed in, says so instead of asking.
  await page.goto(`${gateway}/oauth2/sign_out`)
  t.match(await page.textContent('h1'), /You are not signed in/)
  t.equal(await page.locator('form[action="/oauth2/sign_out"]').count(), 0, 'no sign-out button')
  await look(t, page, '07-sign-out-not-signed-in')

  await page.goto(`${gateway}/c/unassigned`)
  await onIdpLoginForm('after signing bob out')

  // --- Carol is not assigned to the app: Entra refuses (AADSTS50105), and the page says who fixes it.
  await signInOnForm(page, 'carol', 'carol', url => url.origin === gateway && url.pathname === '/oauth/openid/callback')
  const refused = await mainText()
  t.match(refused, 'Your account has not been given access to this application.', 'what happened, in plain words')
  t.match(refused, 'For your administrator: Assign the user', 'who fixes it')
  t.match(refused, /Code AADSTS50105 .* request id/, 'the code in small print')
  t.notOk(await page.isVisible('text=Try signing in again'), 'no "try again" where it cannot help')
  t.ok(await page.isVisible('text=Use a different account'), 'another account is offered')
  await look(t, page, '08-error-not-assigned')

  // --- A sign-in response this browser did not start.
  await page.goto(`${gateway}/oauth/openid/callback?code=forged&state=forged`)
  t.match(await mainText(), "doesn't belong to a sign-in started in this browser")
  t.ok(await page.isVisible('text=Try signing in again'), 'starting over can help here')
  await look(t, page, '09-error-state-unknown')

  // --- The upstream down: the gateway's own 502 page, for a signed-in user.
  await page.goto(`${gateway}/c/down`)
  await onIdpLoginForm('before the upstream goes down')
  await signInOnForm(page, 'alice', 'alice', url => url.href === `${gateway}/c/down`)
  await stack.upstream.close()
  await page.goto(`${gateway}/c/down`)
  t.match(await mainText(), /could not reach|not answering|unavailable/i, 'the 502 page says the app is not answering')
  await look(t, page, '10-error-upstream-down')

  t.same(browser.problems.filter(p => !p.includes('/c/down')), [], 'no console errors (CSP violations, failed assets) on any page')
})

t.test('the sign-in page (OPENID_AUTO_REDIRECT=false): named once, and its button returns to the deep link', async t => {
  const stack = await startStack({ env: { OPENID_AUTO_REDIRECT: 'false' } })
  t.teardown(() => stack.close())
  const browser = await launchChromium({ viewport: { width: 1280, height: 800 } })
  t.teardown(() => browser.close())
  const { page } = browser
  page.setDefaultTimeout(WAIT_MS)
  const deepLink = `${stack.url}/c/abc?x=1&y=2`
  await page.goto(deepLink)
  await page.waitForSelector('#sign-in')
  t.equal(await page.title(), 'Sign in to LibreChat', 'the title names the app once')
  t.match(await page.textContent('main'), 'Sign in with your work or school account to continue.')
  t.ok(await page.isVisible('text=Use a different account'), 'another account can be chosen from the start')
  await look(t, page, '11-sign-in-page')
  await page.click('#sign-in')
  await page.waitForSelector('#login-form')
  await signInOnForm(page, 'alice', 'alice', url => url.href === deepLink)
  t.equal(page.url(), deepLink, 'the button came back to the deep link, query and all')
  t.same(browser.problems, [], 'no console errors')
})

async function signInOnForm (page: Page, username: string, password: string, landed: (url: URL) => boolean): Promise<void> {
  await page.fill('#username', username)
  await page.fill('#password', password)
  await Promise.all([page.waitForURL(landed), page.click('#sign-in')])
}

/** The decoded value the demo upstream shows for one received header. */
async function identityValue (page: Page, header: string): Promise<string | null> {
  return await page.locator('#identity tbody tr').filter({ has: page.locator('th', { hasText: new RegExp(`^${header}$`) }) }).locator('td .value').first().textContent()
}
