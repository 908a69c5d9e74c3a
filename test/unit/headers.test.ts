import t from 'tap'
import { clientResponseHeaders, encodeHeaderValue, identityHeaders, isReservedHeader, upstreamRequestHeaders } from '../../src/proxy/headers.js'
import { readCookie, stripCookies } from '../../src/session/cookies.js'
import { identityFromClaims } from '../../src/principal/claims.js'

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

t.test('the gateway cookies are removed, other cookies kept', async t => {
  const ours = ['entra-gw', 'entra-gw-login']
  t.equal(stripCookies('a=1; entra-gw=xyz; refreshToken=r', ours), 'a=1; refreshToken=r')
  t.equal(stripCookies('entra-gw=xyz; entra-gw-login=tx', ours), undefined)
  t.equal(stripCookies('entra-gw-other=1; b=2', ours), 'entra-gw-other=1; b=2')
  t.equal(stripCookies('token_provider=openid', ours), 'token_provider=openid')
  t.equal(readCookie('x-entra-gw=evil; entra-gw=good', 'entra-gw'), 'good', 'only a whole cookie name matches')
  t.equal(readCookie('a=1;entra-gw=s%3Ax', 'entra-gw'), 's:x')
  t.equal(readCookie('a=1', 'entra-gw'), undefined)
  t.equal(readCookie('x=a entra-gw=planted; entra-gw=real', 'entra-gw'), 'real', 'a look-alike inside another cookie\'s value is not ours')
  t.equal(readCookie('x=a\tentra-gw=planted', 'entra-gw'), undefined)
  t.equal(readCookie('a=1;   entra-gw=spaced', 'entra-gw'), 'spaced')
})

t.test('a header the gateway sets is never also the client\'s', async t => {
  const out = upstreamRequestHeaders(['Authorization', 'Bearer client-chosen', 'X-Other', '1'], [], { peer: '127.0.0.1', trusted: false, protocol: 'http', host: 'gw' }, { authorization: 'Bearer from-gateway' })
  const values = out.filter((_v, i) => i % 2 === 0 && (out[i] as string).toLowerCase() === 'authorization').map((_v, i) => i)
  t.equal(values.length, 1, 'one Authorization header')
  t.equal(asObject(out).authorization, 'Bearer from-gateway')
})

/** Raw headers as Node gives them: [name, value, ...] with names as the client sent them. */
const asObject = (list: string[]): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i < list.length; i += 2) out[(list[i] as string).toLowerCase()] = list[i + 1] as string
  return out
}

t.test('forwarded-for/proto/host come from the connection unless the peer is trusted', async t => {
  const spoofed = ['X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil', 'X-Real-IP', '6.6.6.6', 'Forwarded', 'for=6.6.6.6', 'X_Forwarded_User', 'admin', 'X-Forwarded-User', 'admin', 'Host', 'gw', 'Authorization', 'Bearer app-jwt']
  const h1 = asObject(upstreamRequestHeaders(spoofed, ['entra-gw'], { peer: '10.0.0.5', trusted: false, protocol: 'http', host: 'gw' }, { 'x-forwarded-user': 'o1' }))
  t.equal(h1['x-forwarded-for'], '10.0.0.5')
  t.equal(h1['x-forwarded-proto'], 'http')
  t.equal(h1['x-forwarded-host'], 'gw')
  t.equal(h1['x-real-ip'], undefined)
  t.equal(h1.forwarded, undefined)
  t.equal(h1.x_forwarded_user, undefined)
  t.equal(h1['x-forwarded-user'], 'o1')
  t.equal(h1.authorization, 'Bearer app-jwt')
  t.equal(h1.host, undefined, 'Host is the upstream client\'s to set')
  const h2 = asObject(upstreamRequestHeaders(spoofed, ['entra-gw'], { peer: '10.0.0.5', trusted: true, protocol: 'https', host: 'chat.example' }, undefined))
  t.equal(h2['x-forwarded-for'], '6.6.6.6, 10.0.0.5')
  t.equal(h2['x-forwarded-proto'], 'https')
  t.equal(h2['x-forwarded-user'], undefined, 'a client value never survives, even from a trusted proxy')
})

t.test('the forwarding family and hop-by-hop headers never pass, in any spelling', async t => {
  const sent = [
    'X_Forwarded_For', '6.6.6.6', 'X_Real_IP', '6.6.6.6', 'X-Real-IP', '6.6.6.6', 'X-Client-IP', '6.6.6.6',
    'X-Original-URL', '/admin', 'X-Forwarded-Prefix', '/evil', 'x_original_uri', '/admin', 'True-Client-IP', '6.6.6.6',
    'Keep-Alive', 'timeout=5', 'Upgrade', 'h2c', 'Transfer_Encoding', 'chunked', 'TE', 'trailers', 'Proxy-Authorization', 'Basic x',
    'Connection', 'keep-alive, X-Custom-Hop', 'X-Custom-Hop', 'drop me', 'Expect', '100-continue',
    'X-Request-Id', 'keep-me', 'Cookie', 'entra-gw=s; entra-gw-login=t; refreshToken=r'
  ]
  const out = upstreamRequestHeaders(sent, ['entra-gw', 'entra-gw-login'], { peer: '127.0.0.1', trusted: false, protocol: 'http', host: 'gw' }, undefined)
  const names = new Set<string>()
  for (let i = 0; i < out.length; i += 2) names.add((out[i] as string).toLowerCase())
  t.same([...names].sort(), ['cookie', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id'])
  t.equal(asObject(out).cookie, 'refreshToken=r')
  t.equal(asObject(out)['x-forwarded-for'], '127.0.0.1')
})

t.test('response hop-by-hop headers are dropped, every Set-Cookie kept', async t => {
  const out = clientResponseHeaders({ connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'x-hop': '1', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' })
  t.same(out, { 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' })
})
