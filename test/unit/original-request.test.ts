// The original request of a forward-auth check: named by headers, believed only from a trusted
// proxy (CVE-2026-40575 was believing them from anyone), refused when malformed.
import t from 'tap'
import { originalRequest, namedOriginalRequest, trustedPeers, SITE_ROOT } from '../../src/policy/original-request.js'

t.test('from an untrusted peer every header is ignored: GET /', async t => {
  const headers = { 'x-forwarded-uri': '/api/config', 'x-forwarded-method': 'POST', 'x-original-uri': '/public', 'x-forwarded-host': 'admin.example' }
  t.same(originalRequest(headers, false), SITE_ROOT)
  t.same(originalRequest({ 'x-original-uri': 'not a path' }, false), SITE_ROOT, 'not even judged malformed')
})

t.test('from a trusted proxy: Traefik/Caddy names first, then nginx names', async t => {
  t.same(originalRequest({ 'x-forwarded-uri': '/a?x=1&y=2', 'x-forwarded-method': 'post', 'x-forwarded-host': 'chat.example' }, true), { method: 'POST', url: '/a?x=1&y=2', host: 'chat.example' })
  t.same(originalRequest({ 'x-original-uri': '/b', 'x-original-method': 'DELETE' }, true), { method: 'DELETE', url: '/b', host: undefined })
  t.same(originalRequest({ 'x-forwarded-uri': '/a', 'x-original-uri': '/b', 'x-original-method': 'DELETE' }, true), { method: 'GET', url: '/a', host: undefined }, 'method and URI from one family')
  t.same(originalRequest({ 'x-original-uri': '/b' }, true), { method: 'GET', url: '/b', host: undefined }, 'no method named: GET')
  t.same(originalRequest({}, true), SITE_ROOT, 'nothing named: GET /')
  t.equal(namedOriginalRequest({}), undefined)
})

t.test('a malformed named request is refused, not guessed at', async t => {
  for (const headers of [
    { 'x-original-uri': 'http://evil.example/' },
    { 'x-original-uri': '' },
    { 'x-original-uri': '*' },
    { 'x-forwarded-uri': ['/a', '/b'] },
    { 'x-original-uri': '/a', 'x-original-method': 'GET /' },
    { 'x-original-uri': '/a', 'x-original-method': '' },
    { 'x-original-uri': '/a', 'x-original-method': ['GET', 'POST'] }
  ]) t.equal(originalRequest(headers, true), 'invalid', JSON.stringify(headers))
})

t.test('trusted peers: addresses and CIDRs, compiled once; none trusts nobody', async t => {
  const trusted = trustedPeers(['127.0.0.1', '10.0.0.0/8', 'fd00::/8'])
  t.ok(trusted('127.0.0.1'))
  t.ok(trusted('10.1.2.3'))
  t.ok(trusted('::ffff:10.1.2.3'), 'IPv4-mapped')
  t.ok(trusted('fd00::1'))
  t.notOk(trusted('127.0.0.2'))
  t.notOk(trusted(undefined), 'a socket without an address')
  t.notOk(trustedPeers([])('127.0.0.1'))
})
