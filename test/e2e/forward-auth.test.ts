// Forward-auth: a real nginx (Debian's) in front of the demo upstream, asking the gateway about
// every request with auth_request, configured by the shipped example site, which includes the
// shipped snippets themselves (deploy/nginx/). Sign-in through nginx, identity to the upstream, refusals, per-path rules on
// the original URI, public paths, and the attacks: a client naming its own original URI
// (directly or through nginx) and a client sending its own identity headers.
import t from 'tap'
import http from 'node:http'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, CLIENT_ID, CLIENT_SECRET, type Stack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { withFreePort } from '../helpers/redis.js'
import { startNginx, type Nginx } from '../../dev/nginx.js'
import { startIdp, DEMO_USERS, type Idp } from '../../dev/idp.js'
import { startUpstream, type Upstream } from '../../dev/upstream.js'

const SNIPPETS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'nginx')
const CALLBACK = '/oauth/openid/callback'
const alice = DEMO_USERS.find(u => u.username === 'alice')!
const bob = DEMO_USERS.find(u => u.username === 'bob')!
const JSON_API = { accept: 'application/json', 'sec-fetch-mode': 'cors' }

/**
 * The shipped example site (deploy/nginx/example-server.conf), which includes the shipped
 * snippets, with only its addresses made local: loopback ports for the gateway, LibreChat and
 * nginx itself, plain http instead of TLS, and the snippets' own directory. Each replacement must
 * match, so a change to the example's shape fails here rather than going untested.
 */
function exampleSite (port: number, gatewayPort: number, upstreamPort: number): string {
  let conf = readFileSync(join(SNIPPETS, 'example-server.conf'), 'utf8')
  const replace = (from: string | RegExp, to: string): void => {
    const next = conf.replace(from, to)
    if (next === conf) throw new Error(`example-server.conf no longer has ${String(from)}`)
    conf = next
  }
  replace('server gateway:3080;', `server 127.0.0.1:${gatewayPort};`)
  replace('server api:3080;', `server 127.0.0.1:${upstreamPort};`)
  replace('listen 443 ssl;', `listen 127.0.0.1:${port};`)
  replace(/^\s*ssl_certificate(_key)?\s.*\n/gm, '')
  replace('server_name <chat.example.com>;', 'server_name localhost;\n    location = /nginx-ready { return 204; }')
  replace(/\/etc\/nginx\/entra-gateway\//g, `${SNIPPETS}/`)
  if (conf.split('\n').some(line => !line.trimStart().startsWith('#') && line.includes('<'))) throw new Error('example-server.conf has a placeholder this test does not fill')
  return conf
}

interface Setup { nginx: Nginx, stack: Stack, idp: Idp, upstream: Upstream, gatewayPort: number }

/**
 * nginx must name the gateway's port, the IdP must know nginx's callback URL, and the gateway
 * must know both: the gateway's port is chosen first, and the whole start retried if it was taken.
 */
async function start (rulesFile: string): Promise<Setup> {
  const upstream = await startUpstream()
  try {
    return await withFreePort(async gatewayPort => {
      const nginx = await startNginx({ readyPath: '/nginx-ready', http: port => exampleSite(port, gatewayPort, upstream.port) })
      let idp: Idp | undefined
      try {
        idp = await startIdp({
          clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [nginx.url + CALLBACK], post_logout_redirect_uris: [nginx.url + '/'] }],
          users: DEMO_USERS
        })
        const stack = await startStack({
          port: gatewayPort,
          idp,
          upstream,
          env: {
            DOMAIN_SERVER: nginx.url,
            OPENID_CALLBACK_URL: CALLBACK,
            TRUSTED_PROXIES: '127.0.0.1',
            OPENID_REQUIRED_ROLE: 'ChatUser',
            AUTHZ_RULES_FILE: rulesFile,
            FORWARD_ACCESS_TOKEN: 'true',
            BEARER_AUTH: 'true'
          }
        })
        return { nginx, stack, idp, upstream, gatewayPort }
      } catch (err) {
        await idp?.close()
        await nginx.stop()
        throw err
      }
    })
  } catch (err) {
    await upstream.close()
    throw err
  }
}

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

/** A request straight to the gateway from a chosen local address (127.0.0.2 is not a trusted proxy). */
async function direct (port: number, path: string, headers: Record<string, string>, from = '127.0.0.2'): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'GET', headers, localAddress: from, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const dir = mkdtempSync(join(tmpdir(), 'gw-fwdauth-'))
const rulesFile = join(dir, 'rules.yaml')
// Two routes (never contacted by a check): the admin panel on its own host, requiring LibreChat's
// ADMIN role, and the RAG API under a prefix.
writeFileSync(rulesFile, 'public:\n  - /api/config\nrules:\n  - path: /admin\n    roles: [Admin]\n' +
  'routes:\n  - host: admin.example.test\n    upstream: http://127.0.0.1:9\n    roles: [ADMIN]\n  - path: /rag\n    upstream: http://127.0.0.2:9\n')
const fa = await start(rulesFile)
t.teardown(async () => {
  await fa.stack.close()
  await fa.nginx.stop()
  await fa.idp.close()
  await fa.upstream.close()
})
const site = fa.nginx.url
const cookieName = fa.stack.config.cookieName

/** Alice's browser, signed in through nginx (once, shared by the tests that need her). */
const aliceBrowser = new Browser()
await signIn(aliceBrowser, `${site}/`, 'alice', 'alice')
const aliceCookie = `${cookieName}=${aliceBrowser.cookie(site, cookieName) ?? ''}`

t.test('an anonymous API call stays 401 JSON; nothing reaches the upstream', async t => {
  const before = fa.upstream.requests.length
  const browser = new Browser()
  for (const method of ['GET', 'POST']) {
    const res = await browser.request(`${site}/api/convos?a=1&b=2`, { method, headers: JSON_API, body: method === 'POST' ? '{}' : undefined })
    t.equal(res.status, 401, method)
    t.equal(res.headers.get('location'), null, 'never a redirect')
    const body = await res.json() as Record<string, string>
    t.equal(body.error, 'unauthenticated')
    t.equal(body.login_url, `${site}/oauth2/sign_in?rd=${encodeURIComponent('/api/convos?a=1&b=2')}`, 'login_url names the original path')
  }
  t.equal(fa.upstream.requests.length, before)
})

t.test('a navigation signs in and lands on the original path, every query parameter kept; the identity reaches the upstream', async t => {
  const target = '/c/new?a=1&b=two%20words&c=%2Fx&c=again'
  const browser = new Browser()
  const first = await browser.request(`${site}${target}`)
  t.equal(first.status, 302, 'a navigation is sent to sign in')
  t.ok(first.headers.get('location')?.startsWith(fa.idp.issuer), 'to the IdP')
  const { response, chain } = await signIn(browser, `${site}${target}`, 'alice', 'alice')
  t.equal(response.status, 200)
  t.equal(chain.at(-1), `${site}${target}`, 'back on the original URI, query and all')
  const seen = fa.upstream.requests.at(-1)!
  t.equal(seen.url, target)
  t.equal(seen.headers['x-forwarded-user'], alice.oid, 'X-Auth-Request-User (oid) as X-Forwarded-User')
  t.equal(seen.headers['x-forwarded-email'], alice.email)
  t.equal(seen.headers['x-forwarded-preferred-username'], alice.preferredUsername)
  t.equal(seen.headers['x-forwarded-roles'], 'ChatUser')
  t.equal(seen.headers['x-forwarded-groups'], alice.groups!.join(','))
  t.equal(seen.headers['x-forwarded-tenant-id'], fa.idp.tenantId)
  t.equal(seen.headers['x-forwarded-name'], "UTF-8''Alice%20Zo%C3%AB%20%C3%85ngstr%C3%B6m", 'encoded as the proxy encodes it')
  t.match(seen.headers['x-forwarded-identity'], /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the signed identity JWT')
  t.match(seen.headers['x-forwarded-access-token'], /^[\w-]+\.[\w-]+\.[\w-]+$/, 'the access token (FORWARD_ACCESS_TOKEN)')
  t.notOk(Object.keys(seen.headers).some(h => h.startsWith('x-auth-request-')), 'no X-Auth-Request-* reaches the upstream')
  t.notOk(seen.headers['x-original-uri'], 'nor the check\'s own headers')
})

t.test('/oauth2/auth answers 202 with X-Auth-Request-* and no-store', async t => {
  const before = fa.upstream.requests.length
  const res = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/c/x', 'x-original-method': 'POST' }, '127.0.0.1')
  t.equal(res.status, 202)
  t.equal(res.headers['cache-control'], 'no-store')
  t.equal(res.headers['x-auth-request-user'], alice.oid)
  t.equal(res.headers['x-auth-request-email'], alice.email)
  t.equal(res.headers['x-auth-request-preferred-username'], alice.preferredUsername)
  t.equal(res.headers['x-auth-request-groups'], alice.groups!.join(','))
  t.equal(res.headers['x-auth-request-roles'], 'ChatUser')
  t.equal(res.headers['x-auth-request-tenant-id'], fa.idp.tenantId)
  t.ok(res.headers['x-auth-request-identity'])
  t.ok(res.headers['x-auth-request-access-token'])
  t.notOk(Object.keys(res.headers).some(h => h.startsWith('x-forwarded-')), 'the upstream\'s names are not the answer\'s')
  t.equal(res.body, '')
  for (const method of ['POST', 'HEAD', 'PUT', 'DELETE']) {
    const any = await fetch(`http://127.0.0.1:${fa.gatewayPort}/oauth2/auth`, { method, headers: { cookie: aliceCookie } })
    t.equal(any.status, 202, `any method: ${method}`)
  }
  const anon = await direct(fa.gatewayPort, '/oauth2/auth', { accept: 'text/html', 'sec-fetch-mode': 'navigate' }, '127.0.0.1')
  t.equal(anon.status, 401, 'no session: 401 even for a navigation, never a redirect')
  t.equal(anon.headers.location, undefined)
  t.match(anon.headers['content-type'], /json/)
  t.equal(anon.headers['cache-control'], 'no-store')
  t.equal(fa.upstream.requests.length, before, 'a check makes no upstream call')
})

t.test('a refused user gets 403 with the reason, through nginx and from the check itself', async t => {
  const browser = new Browser()
  const { response } = await signIn(browser, `${site}/c/1`, 'bob', 'bob')
  t.equal(response.status, 403)
  const page = await response.text()
  t.match(page, /requires the role ChatUser/, 'the gateway\'s page, not nginx\'s bare 403')
  t.match(page, new RegExp(bob.email!.replace('.', '\\.')))
  const api = await browser.request(`${site}/api/convos`, { headers: JSON_API })
  t.equal(api.status, 403)
  t.equal((await api.json() as Record<string, string>).reason, 'missing_role')
  const check = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: `${cookieName}=${browser.cookie(site, cookieName) ?? ''}`, accept: 'application/json' }, '127.0.0.1')
  t.equal(check.status, 403)
  t.equal(check.headers['cache-control'], 'no-store')
  t.equal(check.headers['x-auth-request-user'], undefined)
})

t.test('a rule on the original URI applies: alice is refused on /admin, not on /', async t => {
  const before = fa.upstream.requests.length
  for (const path of ['/admin', '/admin/users?x=1', '/ADMIN', '/x/../admin', '/%61dmin']) {
    const res = await aliceBrowser.request(`${site}${path}`, { headers: JSON_API })
    t.equal(res.status, 403, path)
    t.equal((await res.json() as Record<string, string>).reason, 'path_role')
  }
  t.equal(fa.upstream.requests.length, before, 'none reached the upstream')
  t.ok(fa.stack.logs.some(l => l.event === 'denied' && l.path === '/admin' && l.rule === '/admin'), 'the denial is logged with the original path, not /oauth2/auth')
  t.equal((await aliceBrowser.request(`${site}/`, { headers: JSON_API })).status, 200)
  t.equal((await aliceBrowser.request(`${site}/administration`, { headers: JSON_API })).status, 200, 'a prefix matches whole segments')
})

t.test('a public path: 202 without identity; the upstream gets none, even from a signed-in user', async t => {
  const anon = await new Browser().request(`${site}/api/config?x=1`, { headers: JSON_API })
  t.equal(anon.status, 200)
  t.equal(fa.upstream.requests.at(-1)!.headers['x-forwarded-user'], undefined)
  const signedIn = await aliceBrowser.request(`${site}/api/config`, { headers: JSON_API })
  t.equal(signedIn.status, 200)
  t.equal(fa.upstream.requests.at(-1)!.headers['x-forwarded-user'], undefined)
  const check = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/api/config' }, '127.0.0.1')
  t.equal(check.status, 202)
  t.equal(check.headers['cache-control'], 'no-store')
  t.notOk(Object.keys(check.headers).some(h => h.startsWith('x-auth-request-')), 'no identity headers')
})

t.test('CVE-2026-40575: an original URI named by an untrusted peer is ignored; the check is GET /', async t => {
  // Anonymous, claiming a public path: believed from the trusted proxy, ignored from anyone else.
  const claim = { 'x-original-uri': '/api/config', 'x-forwarded-uri': '/api/config', accept: 'application/json' }
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', claim, '127.0.0.1')).status, 202, 'from the trusted proxy: the public path')
  const spoofed = await direct(fa.gatewayPort, '/oauth2/auth', claim)
  t.equal(spoofed.status, 401, 'from 127.0.0.2: judged as GET /, which needs a session')
  // X-Forwarded-For naming the trusted proxy changes nothing: the TCP peer decides.
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', { ...claim, 'x-forwarded-for': '127.0.0.1' })).status, 401)
  // Signed in: a rule on the named path applies only when a trusted proxy names it.
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/admin' }, '127.0.0.1')).status, 403)
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/admin' })).status, 202, 'judged as / from an untrusted peer')
  // Through nginx, a client's own X-Original-URI or X-Forwarded-Uri is replaced by the real one.
  const viaNginx = await new Browser().request(`${site}/c/secret`, { headers: { ...JSON_API, 'x-original-uri': '/api/config', 'x-forwarded-uri': '/api/config' } })
  t.equal(viaNginx.status, 401)
  // A trusted proxy naming something that is not an origin-form target: refused, not guessed at.
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', { 'x-original-uri': 'http://evil.example/api/config' }, '127.0.0.1')).status, 400)
  t.equal((await direct(fa.gatewayPort, '/oauth2/auth', { 'x-original-uri': '/api/config', 'x-original-method': 'GET /' }, '127.0.0.1')).status, 400)
  // /oauth2/sign_in: only a trusted proxy hands a request over; anyone else's visit signs in.
  const handed = await direct(fa.gatewayPort, '/oauth2/sign_in', { 'x-original-uri': '/api/x', 'x-original-method': 'POST', accept: 'application/json' }, '127.0.0.1')
  t.equal(handed.status, 401)
  const visit = await direct(fa.gatewayPort, '/oauth2/sign_in', { 'x-original-uri': '/api/x', 'x-original-method': 'POST', accept: 'application/json' })
  t.equal(visit.status, 302, 'an explicit sign-in, as before')
})

t.test('a client cannot inject identity headers through nginx', async t => {
  const forged = {
    'x-forwarded-user': 'admin',
    'x-forwarded-email': 'admin@evil.example',
    'x-forwarded-roles': 'Admin',
    'x-forwarded-groups': 'all',
    'x-forwarded-identity': 'forged.jwt.value',
    'x-forwarded-access-token': 'forged',
    'x-auth-request-user': 'admin',
    'x-auth-request-email': 'admin@evil.example',
    'x-auth-request-roles': 'Admin',
    'x-auth-request-access-token': 'forged',
    x_forwarded_user: 'admin',
    x_auth_request_user: 'admin'
  }
  const names = Object.keys(forged)
  const check = (headers: Record<string, string | string[] | undefined>, who: string): void => {
    for (const name of names) t.notOk(Object.values(headers).flat().includes(forged[name as keyof typeof forged]), `${who}: no forged ${name}`)
    t.notOk(Object.keys(headers).some(h => h.startsWith('x-auth-request-') || h.includes('_')), `${who}: no X-Auth-Request-* and no _ spelling`)
  }
  const signedIn = await aliceBrowser.request(`${site}/headers`, { headers: { ...JSON_API, ...forged } })
  t.equal(signedIn.status, 200)
  const seen = fa.upstream.requests.at(-1)!.headers
  t.equal(seen['x-forwarded-user'], alice.oid, 'the gateway\'s value, not the client\'s')
  t.equal(seen['x-forwarded-roles'], 'ChatUser')
  check(seen, 'signed in')
  const pub = await new Browser().request(`${site}/api/config`, { headers: { ...JSON_API, ...forged } })
  t.equal(pub.status, 200)
  const seenPublic = fa.upstream.requests.at(-1)!.headers
  t.equal(seenPublic['x-forwarded-user'], undefined, 'on a public path: none at all')
  check(seenPublic, 'public path')
})

t.test('the check refreshes an expiring session like a proxied request', async t => {
  await editSession(fa.stack.store, aliceBrowser, site, cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 5 })
  const refreshes = fa.idp.tokenRequests.refresh_token
  const res = await aliceBrowser.request(`${site}/c/after-refresh`, { headers: JSON_API })
  t.equal(res.status, 200)
  t.equal(fa.idp.tokenRequests.refresh_token, refreshes + 1, 'one refresh at the IdP')
  t.equal(fa.upstream.requests.at(-1)!.headers['x-forwarded-user'], alice.oid)
  // The access token is renewed, not merely still valid.
  await editSession(fa.stack.store, aliceBrowser, site, cookieName, s => { t.ok(s.accessExp > Math.floor(Date.now() / 1000) + 60, 'the renewed expiry is stored') })
})

t.test('a chat stream passes the example site after the check', async t => {
  const res = await aliceBrowser.request(`${site}/api/agents/chat/stream/1`, { headers: { accept: 'text/event-stream', 'sec-fetch-mode': 'cors' } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/event-stream/)
  t.equal((await res.text()).match(/^data: /gm)?.length, 5, 'every event')
  t.equal(fa.upstream.requests.at(-1)!.headers['x-forwarded-user'], alice.oid)
})

t.test('an API bearer token (BEARER_AUTH) is judged by the same check', async t => {
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: fa.idp.issuer, aud: CLIENT_ID, sub: 's', oid: alice.oid, tid: fa.idp.tenantId, roles: ['ChatUser'], scp: 'access_as_user', iat: now - 60, nbf: now - 60, exp: now + 600 }
  const token = await fa.idp.signJwt(claims)
  const res = await fetch(`${site}/api/messages`, { headers: { ...JSON_API, authorization: `Bearer ${token}` } })
  t.equal(res.status, 200, 'no session needed')
  const seen = fa.upstream.requests.at(-1)!.headers
  t.equal(seen['x-forwarded-user'], alice.oid)
  t.equal(seen['x-forwarded-roles'], 'ChatUser')
  t.equal(seen.authorization, `Bearer ${token}`, 'the client\'s Authorization passes')
  t.equal(seen['x-forwarded-identity'], undefined, 'nothing signed in a bearer caller\'s name')
  const expired = await fetch(`http://127.0.0.1:${fa.gatewayPort}/oauth2/auth`, { headers: { authorization: `Bearer ${await fa.idp.signJwt({ ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 })}` } })
  t.equal(expired.status, 401)
  t.match(expired.headers.get('www-authenticate') ?? '', /invalid_token/)
  const noRole = await fetch(`${site}/api/messages`, { headers: { ...JSON_API, authorization: `Bearer ${await fa.idp.signJwt({ ...claims, roles: undefined })}` } })
  t.equal(noRole.status, 403, 'the same role rules apply')
})

t.test('routes: the original host and path choose the route, its rules and the identity JWT audience', async t => {
  const ask = async (uri: string, host?: string): Promise<Answer> => await direct(fa.gatewayPort, '/oauth2/auth', {
    cookie: aliceCookie,
    'x-forwarded-uri': uri,
    'x-forwarded-method': 'GET',
    ...(host !== undefined ? { 'x-forwarded-host': host } : {})
  }, '127.0.0.1')
  const admin = await ask('/', 'admin.example.test')
  t.equal(admin.status, 403, "the admin panel's host requires ADMIN: alice is refused")
  t.match(JSON.parse(admin.body), { reason: 'route_role' })
  const chat = await ask('/', 'localhost')
  t.equal(chat.status, 202, 'the chat site lets her in')
  const audience = (res: Answer): unknown => JSON.parse(Buffer.from(String(res.headers['x-auth-request-identity']).split('.')[1] ?? '', 'base64url').toString()).aud
  t.equal(audience(chat), fa.upstream.url, 'the default upstream is the audience of the identity JWT')
  const rag = await ask('/rag/query?x=1', 'localhost')
  t.equal(rag.status, 202)
  t.equal(audience(rag), 'http://127.0.0.2:9', "a path route's upstream is the audience")
  // From an untrusted peer the named host and path count for nothing: judged as GET / on the default site.
  const spoofed = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-forwarded-uri': '/rag/x', 'x-forwarded-host': 'admin.example.test' })
  t.equal(spoofed.status, 202, 'judged as GET / on the default site')
  t.equal(spoofed.headers['x-auth-request-user'], alice.oid)
})

t.test('only the trusted proxy is handed what acts as the user: the identity JWT and the access token', async t => {
  const fromProxy = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/' }, '127.0.0.1')
  t.equal(fromProxy.status, 202)
  t.ok(fromProxy.headers['x-auth-request-identity'], 'the proxy gets the identity JWT')
  t.ok(fromProxy.headers['x-auth-request-access-token'], 'and the access token')
  // Anyone else with the cookie (a script in the page, a client of its own): who, not the tokens.
  const other = await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie })
  t.equal(other.status, 202)
  t.equal(other.headers['x-auth-request-user'], alice.oid, 'the user is named')
  t.notOk(other.headers['x-auth-request-identity'], 'no identity JWT')
  t.notOk(Object.keys(other.headers).some(h => h.startsWith('x-auth-request-access-token')), 'no access token')
})

t.test('a check naming a request from a peer outside TRUSTED_PROXIES is said in the log, once per peer', async t => {
  const before = fa.stack.logs.filter(l => l.event === 'forward_auth_untrusted').length
  for (let i = 0; i < 3; i++) await direct(fa.gatewayPort, '/oauth2/auth', { cookie: aliceCookie, 'x-original-uri': '/admin' }, '127.0.0.3')
  const lines = fa.stack.logs.filter(l => l.event === 'forward_auth_untrusted').slice(before)
  t.equal(lines.length, 1, 'one warning for three checks')
  t.equal(lines[0]?.peer, '127.0.0.3')
  t.match(lines[0]?.msg, 'add the proxy to TRUSTED_PROXIES')
})
