// A host route in a real browser (Debian's chromium): DOMAIN_SERVER http://chat.example.localhost
// and the admin panel's host route admin.example.localhost, COOKIE_DOMAIN example.localhost
// (Chromium resolves *.localhost to loopback itself; it refuses Domain=localhost, a top-level
// name, so the sites are one level deeper). Opening the admin host without a session signs in
// at DOMAIN_SERVER and comes back to the admin page; signing out there lands on DOMAIN_SERVER's
// signed-out page, which a form-action CSP naming only the page's own origin would block.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStack } from '../helpers/stack.js'
import { launchChromium } from '../helpers/chromium.js'
import { startUpstream } from '../../dev/upstream.js'
import { ADMIN_USER, DEMO_USERS } from '../../dev/idp.js'

const dana = ADMIN_USER
const WAIT_MS = 15_000

t.test('the admin host: sign in there, come back there, sign out there', async t => {
  const admin = await startUpstream()
  t.teardown(() => admin.close())
  const file = join(mkdtempSync(join(tmpdir(), 'gw-host-routes-')), 'rules.yaml')
  writeFileSync(file, `routes:\n  - host: admin.example.localhost\n    upstream: ${admin.url}\n    roles: [ADMIN]\n`)
  const stack = await startStack({ publicHost: 'chat.example.localhost', users: [...DEMO_USERS, dana], env: { AUTHZ_RULES_FILE: file, COOKIE_DOMAIN: 'example.localhost' } })
  t.teardown(() => stack.close())
  const chat = stack.url
  const adminSite = `http://admin.example.localhost:${new URL(chat).port}`
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const { page, context } = browser
  page.setDefaultTimeout(WAIT_MS)
  page.setDefaultNavigationTimeout(WAIT_MS)

  await page.goto(`${adminSite}/users?page=2`)
  await page.waitForSelector('#login-form')
  t.ok(page.url().startsWith(`${stack.idp.origin}/interaction/`), 'the IdP\'s login form')
  await page.fill('#username', 'dana')
  await page.fill('#password', 'dana')
  await Promise.all([page.waitForURL(url => url.origin === adminSite), page.click('#sign-in')])
  t.equal(page.url(), `${adminSite}/users?page=2`, 'back on the admin host\'s page')
  t.equal(admin.requests.at(-1)?.headers['x-forwarded-user'], dana.oid, 'the admin upstream got her identity')
  const cookie = (await context.cookies(chat)).find(c => c.name === stack.config.cookieName)
  t.equal(cookie?.domain, '.example.localhost', 'one session cookie for the cookie domain')

  await page.goto(`${adminSite}/oauth2/sign_out`)
  await Promise.all([page.waitForURL(url => url.href === `${chat}/oauth2/signed_out`), page.click('#sign-out')])
  t.equal((await context.cookies(adminSite)).find(c => c.name === stack.config.cookieName), undefined, 'the shared cookie is gone')
  t.same(browser.problems, [], 'no console errors (CSP violations) on the way')
})
