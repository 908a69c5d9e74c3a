// COOKIE_DOMAIN: the cookies' names and reach, the sites a sign-in may return to, and the one
// line a setting browsers would refuse gets.
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { BASE_ENV, problemsOf } from '../helpers/config.js'

const base = {
  ...BASE_ENV,
  ROUTES: 'admin.example.com=http://admin-panel:3000, rag.other.net=http://rag_api:8000, /rag=http://rag_api:8000'
}

t.test('without COOKIE_DOMAIN: host-only __Host- cookies, one site, host routes for bearer tokens (said once)', async t => {
  const c = loadConfig(base)
  t.equal(c.cookieDomain, undefined)
  t.equal(c.cookieName, '__Host-entra-gw')
  t.equal(c.loginCookieName, '__Host-entra-gw-login')
  t.equal(c.hostOnlyCookies, undefined)
  t.same([...c.siteOrigins], [['chat.example.com', 'https://chat.example.com']])
  const notice = c.notices.filter(n => n.variable === 'COOKIE_DOMAIN')
  t.equal(notice.length, 1)
  t.match(notice[0]?.message, /^The host routes admin\.example\.com, rag\.other\.net get no browser sign-in: .*set COOKIE_DOMAIN to a domain the hosts share \(such as example\.com\)/)
})

t.test('with COOKIE_DOMAIN: __Secure- cookies for the domain, the host routes under it are sites', async t => {
  for (const value of ['example.com', '.Example.COM']) {
    const c = loadConfig({ ...base, COOKIE_DOMAIN: value })
    t.equal(c.cookieDomain, 'example.com', `${value}: a leading dot and case are ignored, as browsers do`)
    t.equal(c.cookieName, '__Secure-entra-gw')
    t.equal(c.loginCookieName, '__Secure-entra-gw-login')
    t.same(c.hostOnlyCookies, { session: '__Host-entra-gw', login: '__Host-entra-gw-login' })
    t.same([...c.siteOrigins], [['chat.example.com', 'https://chat.example.com'], ['admin.example.com', 'https://admin.example.com']])
    t.match(c.notices.find(n => n.variable === 'COOKIE_DOMAIN')?.message, /^The host route rag\.other\.net is not under COOKIE_DOMAIN=example\.com: .*bearer tokens/)
  }
  const http = loadConfig({ ...base, DOMAIN_SERVER: 'http://chat.lc.localhost:3080', COOKIE_DOMAIN: 'lc.localhost', ROUTES: 'admin.lc.localhost=http://admin-panel:3000' })
  t.equal(http.cookieName, 'entra-gw', 'over http, no prefix')
  t.same(http.hostOnlyCookies, { session: 'entra-gw', login: 'entra-gw-login' })
  t.equal(http.siteOrigins.get('admin.lc.localhost'), 'http://admin.lc.localhost:3080', 'DOMAIN_SERVER\'s scheme and port')
  t.equal(loadConfig({ ...base, COOKIE_DOMAIN: 'chat.example.com' }).siteOrigins.size, 1, 'the host itself: nothing else is under it')
})

t.test('a COOKIE_DOMAIN browsers would refuse is one line naming it', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ COOKIE_DOMAIN: 'example.org' }, /^COOKIE_DOMAIN=example\.org does not cover DOMAIN_SERVER's host chat\.example\.com, .*set it to example\.com or another domain chat\.example\.com ends with\.$/],
    [{ COOKIE_DOMAIN: 'hat.example.com' }, /does not cover DOMAIN_SERVER's host chat\.example\.com/],
    [{ COOKIE_DOMAIN: 'com' }, /^COOKIE_DOMAIN=com is a top-level name/],
    [{ COOKIE_DOMAIN: 'example.com:443' }, /^COOKIE_DOMAIN must be a domain name such as example\.com/],
    [{ COOKIE_DOMAIN: '*.example.com' }, /^COOKIE_DOMAIN must be a domain name/],
    [{ COOKIE_DOMAIN: '127.0.0.1', DOMAIN_SERVER: 'http://127.0.0.1:3080' }, /^COOKIE_DOMAIN must be a domain name/]
  ]
  for (const [env, words] of cases) {
    const problems = problemsOf({ ...base, ...env })
    t.equal(problems.length, 1, JSON.stringify(env))
    t.match(problems[0], words)
  }
})
