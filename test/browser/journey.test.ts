// The whole journey in a real browser (Debian's chromium driven by playwright-core), through
// the gateway, against the local IdP's real login form: a deep link, signing in, the identity
// the upstream receives, a streamed reply, signing out of the gateway and of the IdP, landing
// on the signed-out page, signing in again, and being refused as a user without the role. A full-page
// screenshot of each page lands in test-artifacts/screenshots/.
import t from 'tap'
import type { Page } from 'playwright-core'
import { startStack } from '../helpers/stack.js'
import { launchChromium, screenshot } from '../helpers/chromium.js'

const WAIT_MS = 15_000

t.test('deep link, sign-in, identity, stream, sign-out, sign-in again, refusal', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_ROLE: 'ChatUser', OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = await launchChromium()
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
  const shot = async (name: string): Promise<void> => {
    const { path, bytes } = await screenshot(page, name)
    t.ok(bytes > 0, `screenshot ${path} saved (${bytes} bytes)`)
  }
  const onIdpLoginForm = async (what: string): Promise<void> => {
    await page.waitForSelector('#login-form')
    t.ok(page.url().startsWith(`${stack.idp.origin}/interaction/`), `${what}: the IdP's login form (${page.url()})`)
  }
  const gatewayCookie = async (): Promise<string | undefined> =>
    (await context.cookies(gateway)).find(c => c.name === cookieName)?.value

  // --- A deep link, without a session: straight to the IdP's login form.
  const deepLink = `${gateway}/c/deep-link?x=1`
  await page.goto(deepLink)
  await onIdpLoginForm('a deep link without a session')
  await shot('01-idp-login-form')

  // --- Sign in as alice: back on the deep link, query and all, with her identity upstream.
  await signInOnForm(page, 'alice', 'alice', url => url.href === deepLink)
  t.equal(page.url(), deepLink, 'landed on the deep link')
  await page.waitForSelector('#identity')
  t.match(await page.textContent('main'), 'GET /c/deep-link?x=1', 'the upstream served the deep link')
  t.equal(await identityValue(page, 'x-forwarded-name'), 'Alice Zoë Ångström', 'the decoded name')
  t.equal(await identityValue(page, 'x-forwarded-email'), 'alice@contoso.example')
  t.equal(await identityValue(page, 'x-forwarded-roles'), 'ChatUser')
  t.equal(await identityValue(page, 'x-forwarded-tenant-id'), stack.idp.tenantId)
  await shot('02-deep-link-identity')
  const aliceSession = await gatewayCookie()
  t.ok(aliceSession, 'a gateway session cookie')

  // --- A streamed reply: an EventSource in the page, through the gateway, with the session
  // cookie. The upstream's HTML has a CSP without connect-src, so the stream is opened from a
  // same-origin JSON document (no CSP) rather than by bypassing the CSP.
  await page.goto(`${gateway}/headers`)
  const events = await page.evaluate(async () => await new Promise<Array<{ data: string, at: number }>>((resolve, reject) => {
    const got: Array<{ data: string, at: number }> = []
    const source = new EventSource('/stream')
    source.onmessage = (e: MessageEvent<string>) => {
      got.push({ data: e.data, at: performance.now() })
      if (got.length === 5) { source.close(); resolve(got) }
    }
    source.onerror = () => { source.close(); reject(new Error(`the stream failed after ${got.length} events`)) }
  }))
  t.same(events.map(e => (JSON.parse(e.data) as { n: number }).n), [0, 1, 2, 3, 4], 'five events, in order')
  const first = events[0]?.at ?? 0
  const last = events[4]?.at ?? 0
  // The upstream sends them 50 ms apart: they must arrive spread out, not in one buffered lump.
  t.ok(last - first >= 100, `events arrived as they were sent (${Math.round(last - first)} ms from first to last)`)
  const streamed = stack.upstream.requests.filter(r => r.url === '/stream')
  t.equal(streamed.length, 1, 'one stream request reached the upstream')
  t.equal(streamed[0]?.headers['x-forwarded-user'], '3b8e6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b', 'as alice')

  // --- Sign out: the gateway's confirmation page, then the IdP's, then back.
  await page.goto(`${gateway}/oauth2/sign_out`)
  await page.waitForSelector('form[action="/oauth2/sign_out"] button')
  await shot('03-sign-out-confirmation')
  await signOutTo(page, 'form[action="/oauth2/sign_out"] button')
  await page.waitForSelector('#sign-out')
  t.match(await page.textContent('h1'), /Sign out/, "the IdP's end-session page")
  await shot('04-idp-sign-out')
  t.not(await gatewayCookie(), aliceSession, 'the gateway session is gone before the IdP is even asked')
  await page.click('#sign-out')

  // --- Back from the IdP on the gateway's signed-out page, which starts no sign-in; its
  // "Sign in again" leads to the IdP's login form (the IdP session ended too).
  await page.waitForURL(url => url.href.startsWith(`${gateway}/oauth2/signed_out`))
  t.match(await page.textContent('h1'), /You are signed out/, "the gateway's signed-out page")
  await shot('05-signed-out')
  await page.click('#sign-in')
  await onIdpLoginForm('"Sign in again" after signing out')
  const unauth = await context.request.get(`${gateway}/oauth2/userinfo`, { headers: { accept: 'application/json' } })
  t.equal(unauth.status(), 401, 'no identity any more')
  await page.goto(`${gateway}/c/another-chat`)
  await onIdpLoginForm('a protected path after signing out')
  await shot('05-sign-in-again')

  // --- Bob signs in but lacks the role: a refusal that says why, and nothing proxied.
  const proxiedBefore = stack.upstream.requests.length
  const refusal = page.waitForResponse(r => r.url() === `${gateway}/c/another-chat` && r.status() !== 302)
  await signInOnForm(page, 'bob', 'bob', url => url.href === `${gateway}/c/another-chat`)
  t.equal((await refusal).status(), 403, 'HTTP 403')
  const text = await page.textContent('main') ?? ''
  t.match(await page.textContent('h1'), /Access denied/)
  t.match(text, 'requires the role ChatUser', 'says which role is required')
  t.match(text, 'bob@contoso.example', 'says who is signed in')
  t.equal(stack.upstream.requests.length, proxiedBefore, 'nothing was proxied for bob')
  await shot('06-access-denied')
  // The same page as a phone in dark mode shows it, for whoever reviews the pages' layout.
  await page.setViewportSize({ width: 390, height: 844 })
  await page.emulateMedia({ colorScheme: 'dark' })
  await shot('06-access-denied-phone-dark')
  await page.emulateMedia({ colorScheme: 'light' })
  await page.setViewportSize({ width: 1024, height: 720 })

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
  await shot('07-sign-out-not-signed-in')

  t.same(browser.problems, [], 'no console errors (CSP violations, failed assets) on any page')
})

async function signInOnForm (page: Page, username: string, password: string, landed: (url: URL) => boolean): Promise<void> {
  await page.fill('#username', username)
  await page.fill('#password', password)
  await Promise.all([page.waitForURL(landed), page.click('#sign-in')])
}

/** The decoded value the demo upstream shows for one received header. */
async function identityValue (page: Page, header: string): Promise<string | null> {
  return await page.locator('#identity tbody tr').filter({ has: page.locator('th', { hasText: new RegExp(`^${header}$`) }) }).locator('td').first().textContent()
}
