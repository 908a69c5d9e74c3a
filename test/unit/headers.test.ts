import t from 'tap'
import { encodeHeaderValue, identityHeaders, isReservedHeader, stripCookie, upstreamHeaders } from '../../src/proxy/headers.js'
import { identityFromClaims } from '../../src/auth/identity.js'

t.test('reserved header names, in every spelling', async t => {
  for (const n of ['x-forwarded-user', 'X-Forwarded-User', 'x_forwarded_user', 'X_FORWARDED_EMAIL', 'x-forwarded_groups', 'x-forwarded-access-token', 'x-forwarded-access-token-expires-on', 'x_forwarded_access_token_foo', 'x-forwarded-identity', 'x-forwarded-tenant-id']) {
    t.ok(isReservedHeader(n), n)
  }
  for (const n of ['x-forwarded-for', 'x-request-id', 'authorization', 'x-user']) t.notOk(isReservedHeader(n), n)
})

t.test('values are encoded so nothing can inject a header and UTF-8 survives', async t => {
  t.equal(encodeHeaderValue('alice@example.com'), 'alice@example.com')
  t.equal(encodeHeaderValue('Zoë Ångström'), "UTF-8''Zo%C3%AB%20%C3%85ngstr%C3%B6m")
  t.equal(decodeURIComponent(encodeHeaderValue('Zoë Ångström').slice(7)), 'Zoë Ångström')
  t.notMatch(encodeHeaderValue('a\r\nX-Evil: 1'), /[\r\n]/)
  t.equal(encodeHeaderValue("UTF-8''looks-encoded"), "UTF-8''UTF-8%27%27looks-encoded")
  t.equal(encodeHeaderValue('a,b', true), "UTF-8''a%2Cb")
})

t.test('identity headers from Entra-shaped claims', async t => {
  const id = identityFromClaims({ sub: 's1', oid: 'o1', tid: 't1', name: 'Zoë', preferred_username: 'zoe@contoso.com', roles: ['ChatUser', 'Admin'], groups: ['g1', 'g2'] })
  t.same(identityHeaders(id), {
    'x-forwarded-user': 'o1',
    'x-forwarded-email': 'zoe@contoso.com',
    'x-forwarded-preferred-username': 'zoe@contoso.com',
    'x-forwarded-name': "UTF-8''Zo%C3%AB",
    'x-forwarded-groups': 'g1,g2',
    'x-forwarded-roles': 'ChatUser,Admin',
    'x-forwarded-tenant-id': 't1'
  })
  t.equal(identityFromClaims({ sub: 's2', upn: 'u@x' }).email, 'u@x')
  t.equal(identityFromClaims({ sub: 's2', upn: 'u@x' }).userId, 's2')
  t.same(identityFromClaims({ sub: 's', roles: 'One' }).roles, ['One'])
})

t.test('the gateway cookie is removed, other cookies kept', async t => {
  t.equal(stripCookie('a=1; entra-gw=xyz; refreshToken=r', 'entra-gw'), 'a=1; refreshToken=r')
  t.equal(stripCookie('entra-gw=xyz', 'entra-gw'), undefined)
  t.equal(stripCookie('entra-gw-other=1; b=2', 'entra-gw'), 'entra-gw-other=1; b=2')
  t.equal(stripCookie('token_provider=openid', 'entra-gw'), 'token_provider=openid')
})

t.test('forwarded-for/proto/host come from the connection unless the peer is trusted', async t => {
  const spoofed = () => ({ 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil', 'x-real-ip': '6.6.6.6', forwarded: 'for=6.6.6.6', x_forwarded_user: 'admin', 'x-forwarded-user': 'admin', host: 'gw', authorization: 'Bearer app-jwt' })
  const h1 = upstreamHeaders(spoofed(), 'entra-gw', { peer: '10.0.0.5', trusted: false, protocol: 'http', host: 'gw' }, { 'x-forwarded-user': 'o1' })
  t.equal(h1['x-forwarded-for'], '10.0.0.5')
  t.equal(h1['x-forwarded-proto'], 'http')
  t.equal(h1['x-forwarded-host'], 'gw')
  t.equal(h1['x-real-ip'], undefined)
  t.equal(h1.forwarded, undefined)
  t.equal(h1.x_forwarded_user, undefined)
  t.equal(h1['x-forwarded-user'], 'o1')
  t.equal(h1.authorization, 'Bearer app-jwt')
  const h2 = upstreamHeaders(spoofed(), 'entra-gw', { peer: '10.0.0.5', trusted: true, protocol: 'https', host: 'chat.example' }, undefined)
  t.equal(h2['x-forwarded-for'], '6.6.6.6, 10.0.0.5')
  t.equal(h2['x-forwarded-proto'], 'https')
  t.equal(h2['x-forwarded-user'], undefined, 'a client value never survives, even from a trusted proxy')
})
