// The outbound proxy: with HTTPS_PROXY/HTTP_PROXY set, every call the gateway makes itself
// (discovery, JWKS, token, UserInfo, Graph, the doctor's probe) passes a real forward proxy
// (dev/connect-proxy.ts), which records what it saw; the upstream never does. The IdP and the
// Graph stand-in listen on 127.0.0.1 and are addressed so: loopback is not excluded
// automatically (as in undici), so the proxy sees their traffic unless NO_PROXY names them.
import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import { getGlobalDispatcher, ProxyAgent, setGlobalDispatcher } from 'undici'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS, type Idp, type IdpUser } from '../../dev/idp.js'
import { startConnectProxy, type ConnectProxy } from '../../dev/connect-proxy.js'
import { runDoctor, secretValues } from '../../src/doctor/run.js'
import { formatFinding } from '../../src/doctor/findings.js'

const USER = 'egress-user'
const PASSWORD = 'Proxy-Pa55word-7319'
const GROUP = '6a1c0000-0000-4000-8000-000000000042'
const json = { accept: 'application/json' }
// Group overage as Entra sends it, so the gateway asks Graph for the groups.
const carol: IdpUser = {
  username: 'carol',
  password: 'carol',
  oid: '3c3c3c3c-1111-4222-8333-444444444444',
  name: 'Carol Overage',
  email: 'carol@contoso.example',
  preferredUsername: 'carol@contoso.example',
  roles: ['ChatUser'],
  extraClaims: { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.windows.net/tenant/users/3c3c/getMemberObjects' } } }
}

/** The proxy's URL with the credentials it requires. */
const withCredentials = (proxy: ConnectProxy): string => proxy.url.replace('http://', `http://${USER}:${PASSWORD}@`)
const hostOf = (url: string): string => new URL(url).host
const pathOf = (url: string): string => new URL(url).pathname

async function metadata (idp: Idp): Promise<Record<string, string>> {
  return await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json() as Record<string, string>
}

/** A port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

t.test('through the proxy: discovery, JWKS, token, UserInfo and Graph; the upstream never', async t => {
  const proxy = await startConnectProxy({ credentials: `${USER}:${PASSWORD}` })
  t.teardown(() => proxy.close())
  const via = withCredentials(proxy)
  const stack = await startStack({
    users: [...DEMO_USERS, carol],
    graph: { memberOf: { [carol.oid]: [GROUP] } },
    env: { HTTPS_PROXY: via, HTTP_PROXY: via, OPENID_REQUIRED_GROUPS: GROUP, OPENID_REQUIRED_ROLE: 'ChatUser', OPENID_REQUIRED_ROLE_TOKEN_KIND: 'userinfo', LOG_LEVEL: 'trace' }
  })
  t.teardown(() => stack.close())
  const meta = await metadata(stack.idp)
  const idp = hostOf(stack.idp.issuer)
  const graph = hostOf(stack.graph?.url ?? '')
  const upstream = hostOf(stack.upstream.url)

  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'carol', 'carol')
  t.equal(response.status, 200, 'signed in: role from UserInfo, group from Graph, all through the proxy')
  const saw = (target: string, method: string, path: (p: string) => boolean): boolean =>
    proxy.requests.some(r => r.target === target && r.method === method && r.path !== undefined && path(r.path))
  t.ok(saw(idp, 'GET', p => p.endsWith('/.well-known/openid-configuration')), 'discovery went through the proxy')
  t.ok(saw(idp, 'GET', p => p === pathOf(meta.jwks_uri ?? '')), 'the JWKS too')
  t.ok(saw(idp, 'POST', p => p === pathOf(meta.token_endpoint ?? '')), 'the token endpoint too')
  t.ok(saw(idp, 'GET', p => p === pathOf(meta.userinfo_endpoint ?? '')), 'UserInfo too')
  t.ok(saw(graph, 'GET', p => p.startsWith('/v1.0/me/transitiveMemberOf')), 'Graph too')
  t.notOk(saw(idp, 'GET', p => p === pathOf(meta.authorization_endpoint ?? '')), 'the browser\'s own visit to the IdP is not the gateway\'s: not proxied')

  // The upstream: a proxied request and the readiness check, both direct.
  t.equal((await browser.request(`${stack.url}/headers`, { headers: json })).status, 200)
  const ready = await fetch(`${stack.url}/readyz`)
  t.equal(ready.status, 200, 'ready: the IdP through the proxy, the upstream directly')
  t.ok(stack.upstream.requests.length >= 2, 'the upstream was reached')
  t.notOk(proxy.saw(upstream), 'and never through the proxy')

  const raw = stack.rawLogs()
  t.notOk(raw.includes(PASSWORD), 'the proxy password is never logged')
  const announced = stack.logs.find(l => l.event === 'egress_proxy')
  t.match(String(announced?.https), /^http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(HTTPS_PROXY\)$/, 'the proxy in use is logged at start, without its credentials')
})

t.test('the bearer-token JWKS (jose) and OPENID_IMAGE_URL go through the proxy too', async t => {
  const proxy = await startConnectProxy()
  t.teardown(() => proxy.close())
  const image = http.createServer((_req, res) => { res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.from('89504e470d0a1a0a', 'hex')) })
  await new Promise<void>(resolve => image.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise<void>(resolve => image.close(() => resolve())) })
  const imageHost = `127.0.0.1:${(image.address() as net.AddressInfo).port}`
  const stack = await startStack({ env: { HTTP_PROXY: proxy.url, BEARER_AUTH: 'true', OPENID_IMAGE_URL: `http://${imageHost}/logo.png` } })
  t.teardown(() => stack.close())
  t.ok(proxy.requests.some(r => r.target === imageHost && r.path === '/logo.png'), 'the sign-in image was fetched through the proxy')
  t.notOk(stack.logs.some(l => l.event === 'logo_unavailable'), 'and loaded')

  const meta = await metadata(stack.idp)
  const jwks = (): number => proxy.requests.filter(r => r.path === pathOf(meta.jwks_uri ?? '')).length
  const before = jwks()
  const now = Math.floor(Date.now() / 1000)
  const token = await stack.idp.signJwt({ iss: stack.idp.issuer, aud: stack.config.clientId, sub: 's', oid: DEMO_USERS[0]?.oid, tid: stack.idp.tenantId, roles: ['ChatUser'], iat: now - 60, nbf: now - 60, exp: now + 600 })
  const res = await fetch(`${stack.url}/api/messages`, { headers: { ...json, authorization: `Bearer ${token}` } })
  t.equal(res.status, 200, 'a bearer token verified against the IdP\'s keys')
  t.equal(jwks(), before + 1, 'which were fetched through the proxy')
  t.notOk(proxy.saw(hostOf(stack.upstream.url)), 'the upstream never')
})

t.test('NO_PROXY: the host:port it names is reached directly, the others still through the proxy', async t => {
  const proxy = await startConnectProxy()
  t.teardown(() => proxy.close())
  const stack = await startStack({
    users: [...DEMO_USERS, carol],
    graph: { memberOf: { [carol.oid]: [GROUP] } },
    env: { HTTP_PROXY: proxy.url, OPENID_REQUIRED_GROUPS: GROUP },
    envAfterStart: ({ idp }) => ({ NO_PROXY: `example.org, ${hostOf(idp.issuer)}` })
  })
  t.teardown(() => stack.close())
  const { response } = await signIn(new Browser(), `${stack.url}/`, 'carol', 'carol')
  t.equal(response.status, 200)
  t.notOk(proxy.saw(hostOf(stack.idp.issuer)), 'the IdP (named in NO_PROXY) was reached directly')
  t.ok(proxy.saw(hostOf(stack.graph?.url ?? '')), 'Graph, on another port of the same host, through the proxy')
  t.notOk(proxy.saw(hostOf(stack.upstream.url)), 'the upstream never')
})

t.test('an unreachable proxy: sign-in answers 503 idp_unavailable at once; the upstream is still ready', async t => {
  const dead = `http://127.0.0.1:${await closedPort()}`
  const stack = await startStack({ env: { HTTPS_PROXY: dead, HTTP_PROXY: dead } })
  t.teardown(() => stack.close())
  const res = await fetch(`${stack.url}/oauth2/sign_in?rd=/`, { headers: json, redirect: 'manual' })
  t.equal(res.status, 503)
  t.equal((await res.json() as Record<string, unknown>).error, 'idp_unavailable')
  const page = await new Browser().request(`${stack.url}/`, { headers: { accept: 'text/html' } })
  t.equal(page.status, 503)
  t.match(await page.text(), /cannot be reached right now/)
  const ready = await (await fetch(`${stack.url}/readyz`)).json() as { checks: Record<string, string> }
  t.match(ready.checks.idp, /^down/, '/readyz names the IdP')
  t.equal(ready.checks.upstream, 'ok', 'the upstream, reached directly, is fine')
})

t.test('a proxy that accepts and never answers: 503 idp_unavailable after the IdP timeout, not a hang', async t => {
  const held: net.Socket[] = []
  const silent = net.createServer(socket => { held.push(socket) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of held) s.destroy()
    await new Promise<void>(resolve => silent.close(() => resolve()))
  })
  const via = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`
  const stack = await startStack({ env: { HTTPS_PROXY: via, HTTP_PROXY: via } })
  t.teardown(() => stack.close())
  const res = await fetch(`${stack.url}/oauth2/sign_in?rd=/`, { headers: json, redirect: 'manual' })
  t.equal(res.status, 503)
  t.equal((await res.json() as Record<string, unknown>).error, 'idp_unavailable')
  t.ok(held.length > 0, 'the gateway did reach the proxy')
})

t.test('a global dispatcher (NODE_USE_ENV_PROXY, a library) reroutes neither the IdP calls nor the upstream', async t => {
  const trap = await startConnectProxy()
  t.teardown(() => trap.close())
  const stack = await startStack()
  t.teardown(() => stack.close())
  const meta = await metadata(stack.idp)
  const before = getGlobalDispatcher()
  // Absolute form, so the trap sees paths; the test's own browser goes through it too.
  setGlobalDispatcher(new ProxyAgent({ uri: trap.url, proxyTunnel: false }))
  t.teardown(() => setGlobalDispatcher(before))

  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 200)
  t.equal((await fetch(`${stack.url}/readyz`)).status, 200)
  t.ok(trap.saw(hostOf(stack.url)), 'the global dispatcher is in force (the test\'s browser went through it)')
  const idp = hostOf(stack.idp.issuer)
  const gatewayCalls = [pathOf(meta.token_endpoint ?? ''), pathOf(meta.jwks_uri ?? '')]
  t.notOk(trap.requests.some(r => r.target === idp && (gatewayCalls.includes(r.path ?? '') || (r.path ?? '').endsWith('/.well-known/openid-configuration'))), 'the gateway\'s IdP calls kept their own dispatcher')
  t.notOk(trap.saw(hostOf(stack.upstream.url)), 'proxied requests and /readyz went to the upstream directly')
})

t.test('the doctor asks the IdP through the proxy, the upstream directly, and says which way each goes', async t => {
  const proxy = await startConnectProxy({ credentials: `${USER}:${PASSWORD}` })
  t.teardown(() => proxy.close())
  const stack = await startStack()
  t.teardown(() => stack.close())
  const env = {
    OPENID_ISSUER: stack.idp.issuer + '/',
    OPENID_CLIENT_ID: stack.config.clientId,
    OPENID_CLIENT_SECRET: 'doctor-egress-secret-0123456789',
    OPENID_SESSION_SECRET: 'doctor-egress-session-secret-0123456789-abc',
    DOMAIN_SERVER: 'http://localhost:3080',
    UPSTREAM_URL: stack.upstream.url,
    HTTP_PROXY: withCredentials(proxy),
    NO_PROXY: 'graph.microsoft.com'
  }
  const findings = await runDoctor(env)
  const out = findings.map(f => formatFinding(f, secretValues(env)))
  t.notOk(findings.some(f => f.level === 'ERROR'), out.join('\n'))
  const idp = hostOf(stack.idp.issuer)
  t.ok(proxy.requests.some(r => r.target === idp && (r.path ?? '').endsWith('/.well-known/openid-configuration')), 'the discovery probe went through the proxy')
  t.notOk(proxy.saw(hostOf(stack.upstream.url)), 'the upstream probe did not')
  const via = out.find(l => l.includes('IdP discovery'))
  t.match(via, /^OK outbound: IdP discovery, JWKS, token endpoint, UserInfo at http:\/\/127\.0\.0\.1:\d+ → through the proxy http:\/\/\*\*\*@127\.0\.0\.1:\d+ \(HTTP_PROXY\)/)
  t.ok(out.some(l => l.startsWith('OK outbound: Microsoft Graph at https://graph.microsoft.com → directly (NO_PROXY names graph.microsoft.com)')), 'Graph: direct, and why')
  t.ok(out.some(l => l.startsWith(`OK the upstream ${stack.upstream.url} is always reached directly`)), 'the upstream: direct')
  t.notOk(out.join('\n').includes(PASSWORD), 'the proxy password is never printed')
})
