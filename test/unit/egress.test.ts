// The outbound proxy's settings and the route of each destination: which variable wins, how
// NO_PROXY matches, and one-line problems for values that are not proxy URLs (never echoing a
// password). The traffic itself is tested end to end in test/e2e/egress-proxy.test.ts.
import t from 'tap'
import { knownVariables, parseSections } from '../../src/config.js'
import { checkEgress, problemFinding, settingsFrom } from '../../src/doctor/checks.js'
import { parseEgress } from '../../src/config/egress.js'
import { egressRoute, showProxy } from '../../src/egress/egress.js'

const settings = (env: Record<string, string>): ReturnType<typeof parseEgress>['values']['egress'] => {
  const s = parseEgress(env)
  if (s.problems.length > 0) throw new Error(s.problems.map(p => p.message).join('\n'))
  return s.values.egress
}
const via = (env: Record<string, string>, url: string): string => {
  const r = egressRoute(settings(env), url)
  return r.kind === 'proxy' ? r.proxy.variable : `direct: ${r.why}`
}

t.test('which variable names the proxy', async t => {
  t.equal(via({}, 'https://login.microsoftonline.com/x'), 'direct: no proxy is set for its scheme')
  t.equal(via({ HTTPS_PROXY: 'http://p:3128' }, 'https://login.microsoftonline.com/x'), 'HTTPS_PROXY')
  t.equal(via({ HTTPS_PROXY: 'http://p:3128' }, 'http://idp.internal/x'), 'direct: no proxy is set for its scheme', 'HTTPS_PROXY is for https:// only')
  t.equal(via({ HTTP_PROXY: 'http://p:3128' }, 'https://graph.microsoft.com/v1.0/me'), 'HTTP_PROXY', 'https:// falls back to HTTP_PROXY, as in undici')
  t.equal(via({ https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2' }, 'https://x.example'), 'https_proxy', 'lower case wins, as in undici and curl')
  t.equal(via({ http_proxy: 'http://a:1', HTTP_PROXY: 'http://b:2' }, 'http://x.example'), 'http_proxy')
  t.equal(via({ PROXY: 'http://lc:1', HTTPS_PROXY: 'http://b:2', HTTP_PROXY: 'http://c:3' }, 'https://x.example'), 'PROXY', 'LibreChat\'s PROXY wins for https://')
  t.equal(via({ PROXY: 'http://lc:1', HTTP_PROXY: 'http://c:3' }, 'http://x.example'), 'PROXY', 'and for http://')
  t.equal(via({ PROXY: '', HTTPS_PROXY: 'http://b:2' }, 'https://x.example'), 'HTTPS_PROXY', 'an empty PROXY= (LibreChat\'s .env.example) is unset')
})

t.test('NO_PROXY, as undici matches it', async t => {
  const env = { HTTPS_PROXY: 'http://p:3128', HTTP_PROXY: 'http://p:3128' }
  const direct = (noProxy: string, url: string): boolean => via({ ...env, NO_PROXY: noProxy }, url).startsWith('direct')
  t.ok(direct('login.microsoftonline.com', 'https://login.microsoftonline.com/t/v2.0'), 'the host itself')
  t.ok(direct('microsoftonline.com', 'https://login.microsoftonline.com/t/v2.0'), 'a subdomain of an entry')
  t.ok(direct('.microsoftonline.com', 'https://login.microsoftonline.com/t/v2.0'), '.domain')
  t.ok(direct('*.microsoftonline.com', 'https://login.microsoftonline.com/t/v2.0'), '*.domain')
  t.notOk(direct('online.com', 'https://login.microsoftonline.com/t/v2.0'), 'not a mere suffix of the name')
  t.ok(direct('a.example, graph.microsoft.com b.example', 'https://graph.microsoft.com/v1.0/me'), 'commas and spaces separate entries')
  t.ok(direct('idp.internal:8443', 'https://idp.internal:8443/x'), 'host:port on that port')
  t.notOk(direct('idp.internal:8443', 'https://idp.internal/x'), 'but not on another (443)')
  t.ok(direct('idp.internal:443', 'https://idp.internal/x'), 'the default port counts')
  t.ok(direct('GRAPH.Microsoft.com', 'https://graph.microsoft.com/'), 'case-insensitive')
  t.ok(direct('*', 'https://anything.example/'), '* excludes everything')
  t.ok(via({ ...env, no_proxy: 'x.example', NO_PROXY: 'y.example' }, 'https://y.example/').startsWith('HTTPS_PROXY'), 'no_proxy wins over NO_PROXY')
  t.ok(direct('graph.microsoft.com', 'https://graph.microsoft.com/') && via({ PROXY: 'http://lc:1', NO_PROXY: 'graph.microsoft.com' }, 'https://graph.microsoft.com/').startsWith('direct'), 'NO_PROXY applies to PROXY too')
  t.equal(via(env, 'http://127.0.0.1:8080/x'), 'HTTP_PROXY', 'loopback is not excluded on its own (as in undici): NO_PROXY must name it')
  t.equal(via(env, 'http://localhost:8080/x'), 'HTTP_PROXY')
  t.ok(direct('127.0.0.1,localhost', 'http://127.0.0.1:8080/x'))
})

t.test('malformed proxy values: one line naming the variable, the value never echoed', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['HTTPS_PROXY', 'proxy.corp:3128', /^HTTPS_PROXY must be a proxy URL with its scheme, such as http:\/\/proxy\.example\.com:3128/],
    ['HTTP_PROXY', 'not a url', /^HTTP_PROXY must be a proxy URL with its scheme/],
    ['PROXY', 'socks5://user:s3cret-value@proxy:1080', /^PROXY must start with http:\/\/ or https:\/\/ \(a socks5 proxy is not supported\)/],
    ['https_proxy', 'ftp://user:s3cret-value@proxy:21', /^https_proxy must start with http:\/\/ or https:\/\//],
    ['HTTPS_PROXY', 'http://user:s3cret-value@:3128', /^HTTPS_PROXY must be a proxy URL|^HTTPS_PROXY names no proxy host/]
  ]
  for (const [name, value, expected] of cases) {
    const { problems } = parseEgress({ [name]: value })
    t.equal(problems.length, 1, `${name}=${value}: one problem`)
    t.equal(problems[0]?.variable, name)
    t.match(problems[0]?.message, expected)
    t.notOk(problems[0]?.message.includes('s3cret-value'), 'no password in the message')
    t.notOk(problems[0]?.message.includes('\n'), 'one line')
  }
  t.same(parseEgress({ HTTPS_PROXY: 'https://user:pw@proxy.corp:3128' }).problems, [], 'an https:// proxy with credentials is fine')
  const lower = problemFinding(parseEgress({ https_proxy: 'proxy.corp:3128' }).problems[0]?.message ?? '')
  t.match(lower, { level: 'ERROR', fix: /https_proxy/ }, 'the doctor names a lower-case variable in its fix too')
})

t.test('shown without credentials', async t => {
  t.equal(showProxy({ url: 'http://user:s3cret@proxy.corp:3128', variable: 'HTTPS_PROXY' }), 'http://***@proxy.corp:3128 (HTTPS_PROXY)')
  t.equal(showProxy({ url: 'http://proxy.corp:3128/', variable: 'PROXY' }), 'http://proxy.corp:3128 (PROXY)')
})

t.test('every proxy variable is a known setting (config/.env.example, the doctor)', async t => {
  const known = knownVariables()
  for (const name of ['PROXY', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy']) t.ok(known.includes(name), name)
})

t.test('the doctor: which way each destination goes, and the mistakes it can see', async t => {
  const base = { OPENID_ISSUER: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000002/v2.0', UPSTREAM_URL: 'http://api:3080' }
  const lines = (env: Record<string, string>): string[] => checkEgress(settingsFrom(parseSections({ ...base, ...env })), env).map(f => `${f.level} ${f.what}`)
  t.match(lines({}), [/^OK no outbound proxy is set/], 'none: one line saying so')
  const proxied = lines({ HTTPS_PROXY: 'http://user:pw@proxy.corp:3128', NO_PROXY: 'graph.microsoft.com' })
  t.ok(proxied.includes('OK outbound: IdP discovery at https://login.microsoftonline.com → through the proxy http://***@proxy.corp:3128 (HTTPS_PROXY)'), proxied.join('\n'))
  t.ok(proxied.includes('OK outbound: Microsoft Graph at https://graph.microsoft.com → directly (NO_PROXY names graph.microsoft.com)'))
  t.ok(proxied.includes('OK the upstream http://api:3080 is always reached directly, never through the outbound proxy'))
  t.match(lines({ https_proxy: 'http://a:1', HTTPS_PROXY: 'http://b:2' }), [/^WARN https_proxy and HTTPS_PROXY are both set and differ: the lower-case https_proxy is used/])
  t.ok(lines({ HTTPS_PROXY: 'http://p:1', NO_PROXY: '10.0.0.0/8' }).some(l => l.startsWith('WARN NO_PROXY entry 10.0.0.0/8 is an address range')))
  t.ok(lines({ PROXY: 'http://lc:1', HTTPS_PROXY: 'http://p:1' }).some(l => l.startsWith('OK PROXY is set: it is used for every outbound destination')))
  const local = { OPENID_ISSUER: 'http://127.0.0.1:8080/t/v2.0' }
  t.ok(lines({ ...local, HTTP_PROXY: 'http://proxy.corp:3128' }).some(l => l.startsWith('WARN outbound: IdP discovery at http://127.0.0.1:8080 would go through the proxy')), 'a loopback IdP sent to a proxy elsewhere')
  t.notOk(lines({ ...local, HTTP_PROXY: 'http://127.0.0.1:3128' }).some(l => l.startsWith('WARN')), 'not when the proxy itself is on this host (a local authenticating proxy)')
})
