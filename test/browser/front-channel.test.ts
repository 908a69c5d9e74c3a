// Front-channel logout in a real browser (Debian's chromium): the IdP's signed-out page frames the
// gateway's logout URL, the frame is allowed there (frame-ancestors: the IdP's origin) and ends
// the session; another site framing the same URL is refused by the browser.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { launchChromium } from '../helpers/chromium.js'

const WAIT_MS = 15_000

t.test('signing out at the IdP ends the gateway session through the framed front-channel URL', async t => {
  const stack = await startStack({ client: origin => ({ frontchannel_logout_uri: `${origin}/oauth2/front_channel_logout` }) })
  t.teardown(() => stack.close())
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const { page, context } = browser
  page.setDefaultTimeout(WAIT_MS)
  page.setDefaultNavigationTimeout(WAIT_MS)
  const consoleErrors: string[] = []
  context.on('console', msg => { if (msg.type() === 'error') consoleErrors.push(msg.text()) })

  await page.goto(`${stack.url}/`)
  await page.waitForSelector('#login-form')
  await page.fill('#username', 'alice')
  await page.fill('#password', 'alice')
  await Promise.all([page.waitForURL(url => url.origin === stack.url), page.click('#sign-in')])
  const bob = new Browser()
  await signIn(bob, `${stack.url}/`, 'bob', 'bob')

  await page.goto(`${stack.idp.issuer}/session/end`)
  const framed = page.waitForResponse(r => r.url().startsWith(`${stack.url}/oauth2/front_channel_logout?`))
  await page.click('#sign-out')
  t.equal((await framed).status(), 200, 'the IdP\'s page loaded the front-channel URL')
  await page.waitForSelector('#signing-out')
  const frame = page.frames().find(f => f.url().startsWith(`${stack.url}/oauth2/front_channel_logout?`))
  t.ok(frame, 'framed in the IdP\'s page')
  t.equal((await frame?.textContent('body'))?.trim(), 'Signed out.', 'and allowed to render there')
  t.notOk(consoleErrors.some(e => /frame-ancestors/.test(e)), 'no frame-ancestors violation on the IdP\'s page')

  await page.goto(`${stack.url}/`)
  await page.waitForSelector('#login-form')
  t.ok(page.url().startsWith(`${stack.idp.origin}/`), 'the gateway session ended: a new sign-in')
  t.equal((await bob.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })).status, 200, 'another user\'s session stays')

  // Any other origin (here the upstream's; a public site could not even reach loopback): the
  // browser refuses to show the gateway's answer in its frame.
  const otherPage = `${stack.upstream.url}/frames-the-gateway`
  await context.route(otherPage, route => route.fulfill({ contentType: 'text/html', body: `<!doctype html><iframe id="f" src="${stack.url}/oauth2/front_channel_logout?sid=x"></iframe>` }))
  await page.goto(otherPage)
  const other = await (await page.waitForSelector('#f')).contentFrame()
  await other?.waitForLoadState()
  // Chromium shows its own error page in place of a frame its ancestors may not hold.
  t.match(other?.url(), /^chrome-error:/, 'framing from another origin is refused by the browser')
  t.notMatch(await other?.content() ?? '', /Signed out\./)
})
