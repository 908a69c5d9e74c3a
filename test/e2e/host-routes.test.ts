// Host routes for browsers, over real HTTP: DOMAIN_SERVER is http://chat.example.localhost:<port>
// and a host route sends admin.example.localhost (LibreChat's admin panel, as its
// deploy-compose.yml serves it) to its own upstream with the role ADMIN required; COOKIE_DOMAIN
// is example.localhost. The gateway listens on 127.0.0.1; names under .localhost are loopback,
// as Chromium resolves them (Chromium refuses `Domain=localhost` itself, a top-level name, and
// takes `Domain=example.localhost`, so the names are one level deeper than LibreChat's). The
// scripted browser keeps Domain cookies as RFC 6265 says, so a session reaches a host only when
// its cookie does.
import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Browser, parseForms, signIn, submitForm } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startUpstream, type Upstream } from '../../dev/upstream.js'
import { ADMIN_USER, DEMO_USERS } from '../../dev/idp.js'
import { ConfigError } from '../../src/config.js'
import { MemoryStore } from '../../src/session/memory-store.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const dana = ADMIN_USER

interface Sites {
  stack: Stack
  main: Upstream
  admin: Upstream
  /** http://chat.example.localhost:<port>: DOMAIN_SERVER. */
  chat: string
  /** http://admin.example.localhost:<port>: the admin panel's host route. */
  adminSite: string
  port: string
}

async function sites (t: Test, env: Record<string, string> = {}, extraRoutes = ''): Promise<Sites> {
  const main = await startUpstream()
  const admin = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'gw-host-routes-'))
  const file = join(dir, 'rules.yaml')
  writeFileSync(file, `routes:
  - host: admin.example.localhost
    upstream: ${admin.url}
    roles: [ADMIN]
${extraRoutes}`)
  const stack = await startStack({
    publicHost: 'chat.example.localhost',
    upstream: main,
    users: [...DEMO_USERS, dana],
    env: { AUTHZ_RULES_FILE: file, COOKIE_DOMAIN: 'example.localhost', ...env }
  })
  t.teardown(async () => {
    await stack.close()
    await main.close()
    await admin.close()
  })
  const port = new URL(stack.url).port
  return { stack, main, admin, chat: stack.url, adminSite: `http://admin.example.localhost:${port}`, port }
}

const last = (chain: string[]): string => chain[chain.length - 1] ?? ''

t.test('a session made on the chat host is recognized on the admin host, whose role rule refuses alice in plain words', async t => {
  const { stack, admin, main, chat, adminSite } = await sites(t)
  const browser = new Browser()
  const signedIn = await signIn(browser, `${chat}/c/new`, 'alice', 'alice')
  t.equal(last(signedIn.chain), `${chat}/c/new`, 'back on the chat host')
  t.equal(signedIn.response.status, 200)
  await signedIn.response.arrayBuffer()
  t.equal(main.requests.at(-1)!.headers['x-forwarded-user'], alice.oid)

  const callback = browser.history.find(h => h.url.startsWith(`${chat}/oauth/openid/callback?`))!
  const session = callback.setCookies.filter(c => c.startsWith(`${stack.config.cookieName}=`) && !/Max-Age=0/.test(c))
  t.equal(session.length, 1, 'one session cookie')
  t.match(session[0], /; Domain=example\.localhost; HttpOnly; SameSite=Lax/, 'for the whole cookie domain, every flag kept')

  const idpBefore = browser.history.filter(h => h.url.startsWith(stack.idp.origin)).length
  const refused = await browser.follow(`${adminSite}/users`)
  t.equal(refused.chain.length, 1, 'no sign-in started: the session is known here')
  t.equal(refused.response.status, 403)
  const page = await refused.response.text()
  t.match(page, /You are signed in as <strong>alice@contoso\.example<\/strong>/)
  t.match(page, /requires the role ADMIN for admin\.example\.localhost/)
  t.match(page, /Your account has the roles ChatUser for this application\./)
  t.equal(browser.history.filter(h => h.url.startsWith(stack.idp.origin)).length, idpBefore)
  t.equal(admin.requests.length, 0, 'the admin panel saw nothing')
  // The refusal's sign-out form posts here and is redirected to DOMAIN_SERVER's signed-out page.
  t.match(refused.response.headers.get('content-security-policy') ?? '', new RegExp(`form-action 'self' [^;]*${chat.replace(/[.:/]/g, '\\$&')}`))
})

t.test('dana, without a session, opens the admin host: she signs in and comes back there, with her identity', async t => {
  const { stack, admin, main, chat, adminSite } = await sites(t)
  const browser = new Browser()
  const result = await signIn(browser, `${adminSite}/users?page=2&sort=name`, 'dana', 'dana')
  t.equal(browser.history[0]!.url, `${adminSite}/users?page=2&sort=name`, 'the first visit is the admin host\'s')
  const start = browser.history.find(h => h.url.startsWith(adminSite))!
  t.ok(start.setCookies.some(c => c.startsWith(`${stack.config.loginCookieName}=`) && /Domain=example\.localhost/.test(c)), 'the login cookie, set on the admin host, reaches the callback on the chat host')
  const idp = browser.history.find(h => h.url.startsWith(stack.idp.origin))!
  t.equal(new URL(idp.url).searchParams.get('redirect_uri'), `${chat}/oauth/openid/callback`, 'the redirect URI stays DOMAIN_SERVER\'s')
  const callback = browser.history.find(h => h.url.startsWith(`${chat}/oauth/openid/callback?`))
  t.ok(callback, 'the sign-in completed on the chat host')
  t.equal(last(result.chain), `${adminSite}/users?page=2&sort=name`, 'and came back to the admin host\'s page, query and all')
  t.equal(result.response.status, 200)
  await result.response.arrayBuffer()
  const seen = admin.requests.at(-1)!
  t.equal(seen.url, '/users?page=2&sort=name')
  t.equal(seen.headers['x-forwarded-user'], dana.oid)
  t.equal(seen.headers['x-forwarded-email'], dana.email)
  t.equal(seen.headers['x-forwarded-roles'], 'ChatUser,ADMIN')
  t.notMatch(String(seen.headers.cookie ?? ''), 'entra-gw', 'the gateway\'s cookies stay at the gateway')
  t.equal(main.requests.length, 0, 'the chat upstream saw nothing of it')

  // The gateway's browser APIs answer the admin site's own scripts, and no other site's.
  const xhr = { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' }
  const own = await browser.request(`${adminSite}/oauth2/token?scope=x`, { headers: { ...xhr, origin: adminSite } })
  t.equal((await own.json() as { error: string }).error, 'invalid_scope', 'the admin site\'s script is answered')
  const sibling = await browser.request(`${adminSite}/oauth2/token?scope=x`, { headers: { ...xhr, origin: `http://evil.example.localhost:${new URL(chat).port}` } })
  t.equal(sibling.status, 403, 'a sibling host that is no route is not')
  await sibling.arrayBuffer()

  // The same session on the chat host: no second sign-in.
  const onChat = await browser.follow(`${chat}/c/new`)
  t.equal(onChat.chain.length, 1)
  t.equal(onChat.response.status, 200)
  await onChat.response.arrayBuffer()
  t.equal(main.requests.at(-1)!.headers['x-forwarded-user'], dana.oid)
})

t.test('sign-in returns only to configured sites: an absolute rd elsewhere lands on /', async t => {
  const { chat, adminSite, port } = await sites(t)
  // An API call on the admin host without a session: where to sign in, to come back there.
  const api = await new Browser({ navigate: false }).request(`${adminSite}/api/users?x=1`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401)
  t.equal((await api.json() as { login_url: string }).login_url, `${chat}/oauth2/sign_in?rd=${encodeURIComponent(`${adminSite}/api/users?x=1`)}`)

  const elsewhere = [
    `http://evil.example.localhost:${port}/x`, // under COOKIE_DOMAIN, but not a route host
    `http://admin.example.localhost.evil.localhost:${port}/x`,
    `http://evil-admin.example.localhost:${port}/x`,
    'http://admin.example.localhost:1/x', // another port
    `https://admin.example.localhost:${port}/x`, // another scheme
    `http://admin.example.localhost:${port}@evil.example.localhost/x`,
    `http://admin.example.localhost:${port}/%2F%2Fevil.example/x`, // a configured site, a path browsers read as //
    `//admin.example.localhost:${port}/x`
  ]
  for (const rd of elsewhere) {
    const browser = new Browser()
    const result = await signIn(browser, `${chat}/oauth2/start?rd=${encodeURIComponent(rd)}`, 'alice', 'alice')
    t.equal(last(result.chain), `${chat}/`, rd)
    await result.response.arrayBuffer()
  }
  const browser = new Browser()
  const ok = await signIn(browser, `${chat}/oauth2/start?rd=${encodeURIComponent(`${adminSite}/users`)}`, 'dana', 'dana')
  t.equal(last(ok.chain), `${adminSite}/users`, 'a configured site is accepted')
  await ok.response.arrayBuffer()
  // A relative rd on the admin host means the admin host's path (the refusal page's
  // "Use a different account" link is one).
  const other = new Browser()
  const relative = await signIn(other, `${adminSite}/oauth2/start?prompt=select_account&rd=%2Fsettings`, 'dana', 'dana')
  t.equal(last(relative.chain), `${adminSite}/settings`)
  await relative.response.arrayBuffer()
})

t.test('sign-out from the admin host ends the shared session on both hosts', async t => {
  const { stack, chat, adminSite } = await sites(t)
  const browser = new Browser()
  await (await signIn(browser, `${adminSite}/`, 'dana', 'dana')).response.arrayBuffer()
  t.equal((stack.store as MemoryStore).size, 1)

  const cross = await browser.request(`${adminSite}/oauth2/sign_out`, { method: 'POST', headers: { origin: `http://evil.example.localhost:${new URL(chat).port}` } })
  t.equal(cross.status, 403, 'a sibling host that is no route may not sign out')
  t.equal((stack.store as MemoryStore).size, 1)

  const page = await browser.request(`${adminSite}/oauth2/sign_out`)
  const form = parseForms(await page.text(), `${adminSite}/oauth2/sign_out`).find(f => f.method === 'POST')!
  t.equal(form.action, `${adminSite}/oauth2/sign_out`)
  const out = await submitForm(browser, form)
  t.equal(out.chain[1], `${chat}/oauth2/signed_out`, 'to DOMAIN_SERVER\'s signed-out page')
  t.equal(out.response.status, 200)
  await out.response.arrayBuffer()
  const post = browser.history.find(h => h.url === `${adminSite}/oauth2/sign_out` && h.status === 303)!
  t.ok(post.setCookies.some(c => c.startsWith(`${stack.config.cookieName}=;`) && /Domain=example\.localhost/.test(c) && /Max-Age=0/.test(c)), 'the shared cookie is removed for the whole domain')
  t.equal((stack.store as MemoryStore).size, 0, 'gone from the store')

  for (const site of [chat, adminSite]) {
    const again = await browser.request(`${site}/c/new`)
    t.equal(again.status, 302, `${site}: signed out`)
    t.ok((again.headers.get('location') ?? '').startsWith(stack.idp.origin), `${site}: sent to sign in`)
  }
})

t.test('a host route the cookie domain does not cover is for bearer tokens: a browser is told, not sent round in circles', async t => {
  const rag = await startUpstream()
  t.teardown(() => rag.close())
  const { stack, port } = await sites(t, {}, `  - host: rag.other.localhost
    upstream: ${rag.url}
`)
  t.ok(stack.config.notices.some(n => n.variable === 'COOKIE_DOMAIN' && /rag\.other\.localhost is not under COOKIE_DOMAIN=example\.localhost/.test(n.message)), 'said once at start')
  const browser = new Browser()
  const res = await browser.request(`http://rag.other.localhost:${port}/`)
  t.equal(res.status, 401)
  t.same(res.headers.getSetCookie(), [], 'no sign-in started')
  const html = await res.text()
  t.match(html, /Sign-in is not available here/)
  t.match(html, /rag\.other\.localhost, accepts API tokens only/)
  const api = await browser.request(`http://rag.other.localhost:${port}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401)
  t.equal((await api.json() as { error: string }).error, 'sign_in_unavailable')
  t.equal(rag.requests.length, 0)
})

t.test('without COOKIE_DOMAIN a host route gets no browser sign-in, and says so at start', async t => {
  const { stack, adminSite } = await sites(t, { COOKIE_DOMAIN: '' })
  t.equal(stack.config.cookieDomain, undefined)
  t.ok(stack.config.notices.some(n => n.variable === 'COOKIE_DOMAIN' && /admin\.example\.localhost gets no browser sign-in/.test(n.message) && /set COOKIE_DOMAIN to a domain the hosts share \(such as example\.localhost\)/.test(n.message)))
  const browser = new Browser()
  const res = await browser.request(`${adminSite}/users`)
  t.equal(res.status, 401, 'told, rather than signed in on the chat host and left there')
  await res.arrayBuffer()
})

t.test('a stale host-only cookie from before COOKIE_DOMAIN does not hide the new one', async t => {
  const { stack, chat } = await sites(t)
  const browser = new Browser()
  // Over http the host-only cookie of before has the same name, and is sent first (older).
  browser.setCookie(chat, stack.config.cookieName, 'stale-value-from-before')
  const result = await signIn(browser, `${chat}/c/new`, 'alice', 'alice')
  t.equal(last(result.chain), `${chat}/c/new`, 'signed in once, no loop')
  t.equal(result.response.status, 200)
  await result.response.arrayBuffer()
  t.equal(browser.jar.get(new URL(chat).host)?.has(stack.config.cookieName) ?? false, false, 'the host-only one was removed')
  const again = await browser.follow(`${chat}/c/2`)
  t.equal(again.chain.length, 1, 'the shared session is read')
  await again.response.arrayBuffer()
})

t.test('over https: __Secure- cookies with Domain, and a __Host- session of before carries over', async t => {
  const store = new MemoryStore({ maxSessions: 100 })
  t.teardown(() => store.close())
  const publicOrigin = 'https://chat.example.test'
  const { startIdp } = await import('../../dev/idp.js')
  const { CLIENT_ID, CLIENT_SECRET } = await import('../helpers/stack.js')
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${publicOrigin}/oauth/openid/callback`] }], users: DEMO_USERS })
  t.teardown(() => idp.close())
  // Before: no COOKIE_DOMAIN, a host-only __Host- session.
  const before = await startStack({ idp, store, env: { DOMAIN_SERVER: publicOrigin, TRUSTED_PROXIES: '127.0.0.1' } })
  t.teardown(() => before.close())
  const browser = new Browser({ tlsProxy: { publicOrigin, gateway: before.url } })
  await (await signIn(browser, `${publicOrigin}/`, 'alice', 'alice')).response.arrayBuffer()
  const old = browser.cookie(publicOrigin, '__Host-entra-gw')
  t.ok(old, 'a __Host- session cookie')

  // After: COOKIE_DOMAIN set, the same store and secret.
  const after = await startStack({ idp, store, env: { DOMAIN_SERVER: publicOrigin, TRUSTED_PROXIES: '127.0.0.1', COOKIE_DOMAIN: 'example.test', ROUTES: `admin.example.test=${before.upstream.url}` } })
  t.teardown(() => after.close())
  t.equal(after.config.cookieName, '__Secure-entra-gw')
  t.equal(after.config.loginCookieName, '__Secure-entra-gw-login')
  const res = await fetch(`${after.url}/c/new`, { redirect: 'manual', headers: { accept: 'application/json', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'chat.example.test', cookie: `__Host-entra-gw=${old ?? ''}; theme=dark` } })
  t.equal(res.status, 200, 'still signed in')
  await res.arrayBuffer()
  const seen = after.upstream.requests.at(-1)!
  t.equal(seen.headers['x-forwarded-user'], alice.oid)
  t.equal(seen.headers.cookie, 'theme=dark', 'the old cookie never reaches the upstream')
  const renamed = res.headers.getSetCookie()
  t.equal(renamed.length, 1)
  t.match(renamed[0], /^__Secure-entra-gw=[^;]+; Max-Age=\d+; Path=\/; Expires=[^;]+; Domain=example\.test; HttpOnly; SameSite=Lax; Secure$/, 'carried over under the new name, for the whole domain')

  // A sign-in from now on removes the __Host- one.
  const fresh = new Browser({ tlsProxy: { publicOrigin, gateway: after.url } })
  fresh.setCookie(publicOrigin, '__Host-entra-gw', old ?? '')
  await (await signIn(fresh, `${publicOrigin}/oauth2/start?rd=%2Fc%2F1`, 'alice', 'alice')).response.arrayBuffer()
  t.match(fresh.history[0]!.setCookies.find(c => c.startsWith('__Secure-entra-gw-login=')) ?? '', /Domain=example\.test; HttpOnly; SameSite=Lax; Secure$/)
  t.equal(fresh.cookie(publicOrigin, '__Host-entra-gw'), undefined, 'the __Host- cookie is gone')
  t.ok(fresh.cookie(publicOrigin, '__Secure-entra-gw'), 'the __Secure- one is set')
  t.ok(fresh.cookie('https://admin.example.test', '__Secure-entra-gw'), 'and reaches the admin host')
})

t.test('COOKIE_DOMAIN that does not cover DOMAIN_SERVER, or a top-level name, stops the start with one line', async t => {
  for (const [value, words] of [
    ['other.localhost', /^COOKIE_DOMAIN=other\.localhost does not cover DOMAIN_SERVER's host chat\.example\.localhost, so browsers would refuse the session cookie there; set it to example\.localhost or another domain chat\.example\.localhost ends with\.$/],
    ['xample.localhost', /does not cover DOMAIN_SERVER's host chat\.example\.localhost/],
    ['localhost', /^COOKIE_DOMAIN=localhost is a top-level name, for which browsers refuse cookies; set it to the domain your hosts share, such as example\.com\.$/],
    ['https://example.localhost', /^COOKIE_DOMAIN must be a domain name such as example\.com, without scheme, port or path \(got "https:\/\/example\.localhost"\)\.$/]
  ] as const) {
    const err = await startStack({ publicHost: 'chat.example.localhost', env: { COOKIE_DOMAIN: value } }).then(s => s.close(), (e: unknown) => e)
    t.ok(err instanceof ConfigError, value)
    t.equal((err as ConfigError).problems.length, 1, `${value}: one line`)
    t.match((err as ConfigError).problems[0], words)
  }
})

t.test('forward-auth: a check about the admin host hands out a sign-in that returns to the admin host', async t => {
  const { stack, port, adminSite } = await sites(t, { TRUSTED_PROXIES: '127.0.0.1' })
  const ask = async (host: string): Promise<{ status: number, login: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}/oauth2/auth`, {
      headers: { accept: 'application/json', 'x-forwarded-host': host, 'x-forwarded-uri': '/users?page=2&sort=name', 'x-forwarded-method': 'GET' }
    })
    return { status: res.status, login: ((await res.json()) as { login_url: string }).login_url }
  }
  const admin = await ask(`admin.example.localhost:${port}`)
  t.equal(admin.status, 401)
  t.equal(admin.login, `${stack.config.publicOrigin}/oauth2/sign_in?rd=${encodeURIComponent(`${adminSite}/users?page=2&sort=name`)}`, 'back to the admin host, path and query')
  const chat = await ask(`chat.example.localhost:${port}`)
  t.equal(chat.login, `${stack.config.publicOrigin}/oauth2/sign_in?rd=${encodeURIComponent('/users?page=2&sort=name')}`, 'on the main site: a path')
  const stranger = await ask('evil.example.com')
  t.equal(stranger.login, `${stack.config.publicOrigin}/oauth2/sign_in?rd=${encodeURIComponent('/users?page=2&sort=name')}`, 'a host that is no site: a path')
})
