// The fuzz suite's own parts (test/helpers/fuzz.ts): the invariants catch what they are meant
// to, and the raw client frames requests and responses as a server sees them.
import t from 'tap'
import {
  namesGatewayCookie, parseResponse, pathReadings, responseViolations, serialize, spell, surelyPublic, maybeRestricted,
  upstreamViolations, type Expectations, type FuzzCase, type RawResponse, type RecordedRequest, type Wire
} from '../helpers/fuzz.js'

const wire: Wire = { port: 8080, cookieName: 'entra-gw', loginCookieName: 'entra-gw-login', session: 'sid.sig', pending: 'pid.psig' }
const base: FuzzCase = { method: 'GET', target: '/', version: 'HTTP/1.1', lines: [], credential: 'none', cookies: [], cookieAt: 0, cookieSeparator: '; ', splitCookies: false, body: { kind: 'none' } }
const gatewayHop = { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': '127.0.0.1:8080' }
const exp: Expectations = {
  cookieName: 'entra-gw',
  loginCookieName: 'entra-gw-login',
  signedIn: [{ ...gatewayHop, 'x-forwarded-user': 'alice-oid', 'x-forwarded-email': 'alice@contoso.example' }],
  anonymous: gatewayHop,
  leaks: ['/work/checkout', 'node_modules']
}
const ok: RawResponse = { status: 200, headers: {}, body: '{}', timedOut: false }
const record = (over: Partial<RecordedRequest>): RecordedRequest => ({ method: 'GET', url: '/api/convos', headers: {}, rawHeaders: [], upgrade: false, ...over })

t.test('spellings of a header name', async t => {
  t.equal(spell('x-forwarded-user', 0, 0), 'x-forwarded-user')
  t.equal(spell('x-forwarded-user', -1, -1), 'X_FORWARDED_USER')
  t.equal(spell('x-real-ip', 0b1, 0b10), 'X-real_ip')
})

t.test('path readings: public as the rules define it, restricted under any reading', async t => {
  t.same(pathReadings('/api/x/%2e%2e/admin?q'), ['/api/admin', '/api/admin'])
  t.same(pathReadings('/API/%63onfig'), ['/api/%63onfig', '/api/config'])
  t.ok(surelyPublic('/api/config/x'))
  t.ok(surelyPublic('/API/%63onfig'), 'an encoded variant is public by design')
  t.notOk(surelyPublic('/api/configx'))
  t.notOk(surelyPublic('/api/config/%2e%2e/convos'))
  t.notOk(surelyPublic('/api/config\\..\\convos'))
  t.notOk(surelyPublic('/api/config/%zz'), 'undecodable: never public')
  t.notOk(surelyPublic('http://127.0.0.1/api/config'), 'absolute form: not a path')
  t.ok(maybeRestricted('/api/x/..%2fadmin'))
  t.ok(maybeRestricted('/api/x/%2e%2e/ADMIN'))
  t.notOk(maybeRestricted('/api/administrator'))
})

t.test('what names the gateway cookie', async t => {
  t.ok(namesGatewayCookie('a=b, entra-gw=x', 'entra-gw'))
  t.ok(namesGatewayCookie(' entra-gw =1', 'entra-gw'))
  t.notOk(namesGatewayCookie('entra-gwx=1; ENTRA-GW=2', 'entra-gw'))
})

t.test('requests on the wire', async t => {
  const text = (c: FuzzCase): string => serialize(c, 'case-1', wire).toString('latin1')
  const plain = text({ ...base, credential: 'session', cookies: ['a=1', 'b=2'], cookieAt: 1 })
  t.match(plain, /^GET \/ HTTP\/1\.1\r\nx-fuzz-case: case-1\r\nUser-Agent: fuzz-case\/case-1\r\nHost: 127\.0\.0\.1:8080\r\n/)
  t.match(plain, /\r\nCookie: a=1; entra-gw=sid\.sig; b=2\r\nConnection: close\r\n\r\n$/)
  t.match(text({ ...base, cookies: ['a=1', 'b=2'], splitCookies: true }), /Cookie: a=1\r\nCookie: b=2\r\n/)
  t.notMatch(text({ ...base, lines: ['Connection: keep-alive'] }), /Connection: close/, 'the case speaks for the connection')
  t.match(text({ ...base, method: 'POST', body: { kind: 'chunked', data: 'hello', te: 'chunked' } }), /Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n$/)
  t.match(text({ ...base, method: 'POST', body: { kind: 'length', data: 'héllo' } }), /Content-Length: 5\r\n/)
})

t.test('responses as they arrive', async t => {
  const buf = (s: string): Buffer => Buffer.from(s, 'latin1')
  t.same(parseResponse(buf('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel'), false).complete, false)
  const whole = parseResponse(buf('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'), false)
  t.same([whole.complete, whole.status, whole.body.toString()], [true, 200, 'hello'])
  const chunked = parseResponse(buf('HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'), false)
  t.same([chunked.complete, chunked.status, chunked.body.toString()], [true, 502, 'abcde'])
  t.same(parseResponse(buf('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), true).complete, true, 'HEAD: no body')
  t.same(parseResponse(buf('HTTP/1.1 200 OK\r\n\r\nuntil close'), false).complete, false)
})

t.test('invariants 1-3: the answer', async t => {
  t.same(responseViolations(ok, '', exp), [])
  t.same(responseViolations({ ...ok, status: 502 }, '', exp), [], '502 is allowed')
  t.match(responseViolations({ ...ok, status: 500 }, '', exp), [/^invariant 2: answered 500/])
  t.match(responseViolations({ ...ok, timedOut: true, status: undefined }, '', exp), [/^invariant 1/])
  t.match(responseViolations({ ...ok, body: '{"err":"TypeError: x\\n    at f (/srv/a.js:1:2)"}' }, '', exp).join('\n'), /invariant 3: stack trace/)
  t.match(responseViolations({ ...ok, body: 'Error: boom\n    at f (a.js:1:2)' }, '', exp).join('\n'), /invariant 3/)
  t.match(responseViolations({ ...ok, body: 'see /work/checkout/src/app.ts' }, '', exp), [/invariant 3: response holds "\/work\/checkout"/])
  t.same(responseViolations({ ...ok, body: 'unknown path /x/node_modules' }, 'GET /x/node_modules HTTP/1.1', exp), [], 'reflected from the request: not a leak')
})

t.test('invariants 4 and 5: what the upstream got', async t => {
  const signedIn: FuzzCase = { ...base, credential: 'session' }
  const good = record({ headers: { ...exp.signedIn[0], 'user-agent': 'x' } })
  t.same(upstreamViolations(signedIn, good, wire, exp), [])
  t.match(upstreamViolations(base, good, wire, exp), [/^invariant 4: a request without a session/])
  t.match(upstreamViolations({ ...base, credential: 'pending' }, record({ url: '/api/x' }), wire, exp), [/^invariant 4/])
  t.same(upstreamViolations(base, record({ url: '/api/config', headers: gatewayHop }), wire, exp), [], 'public path, anonymous headers')
  t.match(upstreamViolations(signedIn, record({ url: '/api/%61dmin', headers: good.headers }), wire, exp), [/^invariant 4: \/api\/admin/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, x_forwarded_for: '1.2.3.4' } }), wire, exp), [/^invariant 5: client-sent x_forwarded_for/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, 'x-real-ip': '1.2.3.4' } }), wire, exp), [/^invariant 5 \(signed in\): x-real-ip/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, 'x-forwarded-email': 'm@evil.example' } }), wire, exp), [/x-forwarded-email: "m@evil.example" instead of the gateway's/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, 'x-forwarded-for': '' } }), wire, exp), [/x-forwarded-for: "" instead of the gateway's "127.0.0.1"/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...exp.anonymous } }), wire, exp), [/x-forwarded-user missing/])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, 'x-forwarded-host': 'evil.example' } }), wire, exp), [/x-forwarded-host "evil.example" is no Host the client sent/])
  t.same(upstreamViolations({ ...signedIn, lines: ['Host: evil.example'] }, record({ headers: { ...good.headers, 'x-forwarded-host': 'evil.example' } }), wire, exp), [])
  t.match(upstreamViolations(signedIn, record({ headers: { ...good.headers, cookie: 'a=1; entra-gw=sid.sig' } }), wire, exp), [/the gateway's own cookie reached the upstream/])
})
