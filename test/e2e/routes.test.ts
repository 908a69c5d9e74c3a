// Routes to more than one upstream, over real HTTP: the default upstream (UPSTREAM_URL), a
// LibreChat-like admin service behind a stripped /admin prefix that requires the role ADMIN
// (from the rules file), and a RAG-like service behind the /rag prefix and the host
// rag.example.com (from ROUTES). Each reaches its own upstream with the identity, the identity
// JWT's audience is that upstream's origin, SSE and WebSockets pass a route as they pass the
// default one, a route's role rule refuses the users without it, and /readyz names the route
// whose upstream is down.
import t, { type Test } from 'tap'
import { request as httpRequest } from 'node:http'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startLibreChat, type LibreChatStandIn } from '../helpers/librechat.js'
import { startUpstream, type Upstream } from '../../dev/upstream.js'
import { ADMIN_USER, DEMO_USERS } from '../../dev/idp.js'
import { ConfigError } from '../../src/config.js'
import { readEvents } from '../helpers/sse.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const dana = ADMIN_USER

interface RoutedStack {
  stack: Stack
  /** The default upstream (UPSTREAM_URL). */
  main: Upstream
  /** Behind /admin (strip_prefix, role ADMIN), from the rules file. */
  admin: LibreChatStandIn
  /** Behind /rag and rag.example.com, from ROUTES. */
  rag: Upstream
  /** A signed-in user's cookie header. */
  cookieOf: (user: string) => Promise<string>
}

async function routedStack (t: Test, env: Record<string, string> = {}): Promise<RoutedStack> {
  const main = await startUpstream()
  const admin = await startLibreChat()
  const rag = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'gw-routes-'))
  const file = join(dir, 'rules.yaml')
  writeFileSync(file, `public:
  - /api/config
routes:
  - path: /admin
    upstream: ${admin.url}
    strip_prefix: true
    roles: [ADMIN]
`)
  const stack = await startStack({
    upstream: main,
    users: [...DEMO_USERS, dana],
    env: { AUTHZ_RULES_FILE: file, ROUTES: `/rag=${rag.url}, rag.example.com=${rag.url}`, ...env }
  })
  t.teardown(async () => {
    await stack.close()
    await main.close()
    await admin.close()
    await rag.close().catch(() => {})
  })
  const cookieOf = async (user: string): Promise<string> => {
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, user, user)
    return `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  }
  return { stack, main, admin, rag, cookieOf }
}

/** A request with a Host header of our choosing (fetch sends the URL's). */
async function withHost (url: string, host: string, opts: { method?: string, cookie?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const u = new URL(url)
    const req = httpRequest({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers: { host, accept: 'application/json', ...opts.headers, ...(opts.cookie !== undefined ? { cookie: opts.cookie } : {}) } }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', d => { body += String(d) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const json = { accept: 'application/json' }

t.test('a prefix route and a host route each reach their own upstream with the identity; the JWT is for that upstream', async t => {
  const { stack, main, admin, rag, cookieOf } = await routedStack(t)
  const cookie = await cookieOf('alice')
  const mainBefore = main.requests.length
  const jwks = createRemoteJWKSet(new URL(`${stack.url}/oauth2/jwks.json`))

  // /rag keeps its prefix (no strip_prefix): the upstream sees the path as sent.
  const viaPrefix = await fetch(`${stack.url}/rag/embed?q=1`, { headers: { ...json, cookie, 'x-forwarded-user': 'mallory' } })
  t.equal(viaPrefix.status, 200)
  const seen = rag.requests.at(-1)!
  t.equal(seen.url, '/rag/embed?q=1')
  t.equal(seen.headers['x-forwarded-user'], alice.oid, 'the identity, not the client\'s header')
  t.equal(seen.headers['x-forwarded-email'], alice.email)
  t.equal(seen.headers['x-forwarded-roles'], 'ChatUser')
  t.equal(seen.headers['x-forwarded-prefix'], undefined, 'nothing stripped, no prefix header')
  t.notMatch(String(seen.headers.cookie ?? ''), stack.config.cookieName, 'the gateway cookie stays here')
  const ragJwt = await jwtVerify(String(seen.headers['x-forwarded-identity']), jwks, { issuer: stack.url, audience: new URL(rag.url).origin })
  t.equal(ragJwt.payload.oid, alice.oid)

  // rag.example.com, any case, any port: the same upstream, the path as sent.
  const viaHost = await withHost(`${stack.url}/embed`, 'RAG.Example.com:8443', { cookie })
  t.equal(viaHost.status, 200)
  t.equal(rag.requests.at(-1)!.url, '/embed')
  t.equal(rag.requests.at(-1)!.headers['x-forwarded-user'], alice.oid)
  t.equal(rag.requests.at(-1)!.headers.host, new URL(rag.url).host, 'Host is the upstream\'s')
  t.equal(rag.requests.at(-1)!.headers['x-forwarded-host'], 'RAG.Example.com:8443', 'the client\'s Host goes on as X-Forwarded-Host')
  t.equal(main.requests.length, mainBefore, 'the default upstream saw none of it')
  const ragCount = rag.requests.length
  t.equal((await withHost(`${stack.url}/embed`, '127.0.0.1', { cookie, headers: { 'x-forwarded-host': 'rag.example.com' } })).status, 200)
  t.equal(rag.requests.length, ragCount, 'X-Forwarded-Host from a peer not in TRUSTED_PROXIES chooses nothing')
  t.equal(main.requests.at(-1)!.url, '/embed', 'the default upstream got it')

  // The default upstream: everything else, with the JWT for its own origin.
  t.equal((await fetch(`${stack.url}/c/new`, { headers: { ...json, cookie } })).status, 200)
  const mainJwt = String(main.requests.at(-1)!.headers['x-forwarded-identity'])
  t.equal((await jwtVerify(mainJwt, jwks, { audience: new URL(main.url).origin })).payload.oid, alice.oid)
  await t.rejects(jwtVerify(mainJwt, jwks, { audience: new URL(rag.url).origin }), 'a token the default upstream received is not valid at the RAG upstream')

  // /admin strips its prefix (strip_prefix: true) and says which one it stripped.
  const danaCookie = await cookieOf('dana')
  const viaAdmin = await fetch(`${stack.url}/admin/users?page=2&sort=name`, { headers: { ...json, cookie: danaCookie } })
  t.equal(viaAdmin.status, 200)
  const adminSeen = admin.requests.at(-1)!
  t.equal(adminSeen.url, '/users?page=2&sort=name')
  t.equal(adminSeen.headers['x-forwarded-prefix'], '/admin')
  t.equal(adminSeen.headers['x-forwarded-user'], dana.oid)
  t.equal(adminSeen.headers['x-forwarded-roles'], 'ChatUser,ADMIN')
  t.equal((await jwtVerify(String(adminSeen.headers['x-forwarded-identity']), jwks, { audience: new URL(admin.url).origin })).payload.oid, dana.oid)
  t.equal((await fetch(`${stack.url}/admin`, { headers: { ...json, cookie: danaCookie } })).status, 200)
  t.equal(admin.requests.at(-1)!.url, '/', 'the prefix alone is the upstream\'s root')
  const spoofed = await fetch(`${stack.url}/x%2F..%2Fadmin/y`, { headers: { ...json, cookie: danaCookie } })
  t.equal(spoofed.status, 400, 'where the raw target and the normalized path disagree about the prefix, nothing is guessed')
})

t.test('behind a trusted proxy, its X-Forwarded-Host chooses the host route', async t => {
  const { stack, main, rag, cookieOf } = await routedStack(t, { TRUSTED_PROXIES: '127.0.0.1' })
  const cookie = await cookieOf('alice')
  const res = await withHost(`${stack.url}/embed`, 'gateway:3080', { cookie, headers: { 'x-forwarded-host': 'rag.example.com' } })
  t.equal(res.status, 200)
  t.equal(rag.requests.at(-1)!.url, '/embed')
  t.equal(rag.requests.at(-1)!.headers['x-forwarded-user'], alice.oid)
  const before = main.requests.length
  await withHost(`${stack.url}/embed`, 'gateway:3080', { cookie })
  t.equal(main.requests.length, before + 1, 'without it, the proxy\'s Host: the default upstream')
})

t.test('a route\'s role rule refuses the users without the role, in every spelling of the prefix', async t => {
  const { stack, main, admin, cookieOf } = await routedStack(t)
  const adminBefore = admin.requests.length
  for (const user of ['alice', 'bob']) {
    const cookie = await cookieOf(user)
    for (const path of ['/admin', '/admin/users', '/ADMIN/users', '/%61dmin/users', '/x/../admin/users', '//admin']) {
      const res = await fetch(`${stack.url}${path}`, { headers: { ...json, cookie } })
      t.equal(res.status, 403, `${user} ${path}`)
      const body = await res.json() as Record<string, unknown>
      t.equal(body.reason, 'route_role')
      t.same(body.required_roles, ['ADMIN'])
      t.match(String(body.message), 'requires the role ADMIN for /admin')
    }
    const page = await fetch(`${stack.url}/admin`, { headers: { accept: 'text/html', cookie } })
    t.equal(page.status, 403)
    t.match(await page.text(), /requires the role ADMIN for \/admin/, 'a person is told why in plain words')
  }
  t.equal(admin.requests.length, adminBefore, 'none reached the admin upstream')
  t.ok(stack.logs.some(l => l.event === 'denied' && l.reason === 'route_role' && l.rule === '/admin'))

  // Look-alikes are not the admin route: they go to the default upstream, under its rules.
  const cookie = await cookieOf('alice')
  const mainBefore = main.requests.length
  for (const path of ['/admin-evil', '/adminx/users', '/admin/../c/new']) {
    t.equal((await fetch(`${stack.url}${path}`, { headers: { ...json, cookie } })).status, 200, path)
  }
  t.equal(main.requests.length, mainBefore + 3)
  t.equal(admin.requests.length, adminBefore)
  // Anonymous: sign in first, as anywhere.
  t.equal((await fetch(`${stack.url}/admin/users`, { headers: json })).status, 401)
})

t.test('SSE streams event by event through a route, and a client that leaves aborts it upstream', async t => {
  const { stack, admin, cookieOf } = await routedStack(t)
  const cookie = await cookieOf('dana')
  const res = await fetch(`${stack.url}/admin/api/agents/chat/stream/abc`, { headers: { accept: 'text/event-stream', cookie } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  // The upstream writes the next event only after the test saw the last: a buffering route would stall here.
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const seen = await readEvents(reader, 3, (_n, count) => { if (count < 3) admin.nextEvent() })
  t.same(seen, [0, 1, 2])
  await reader.cancel()
  await admin.streamClosed
  t.pass('the upstream saw its stream closed when the client left')
  t.equal(stack.app.upstream.inflight, 0, 'the in-flight count is back to zero')
})

t.test('a WebSocket upgrade through a route carries the identity and passes the route\'s rule', async t => {
  const { stack, cookieOf } = await routedStack(t)
  const cookie = await cookieOf('dana')
  const ws = new WebSocket(`${stack.url.replace('http', 'ws')}/admin/ws`, { headers: { cookie: `${cookie}; lc=1`, 'x-forwarded-user': 'mallory' } })
  t.teardown(() => ws.terminate())
  const first = await new Promise<string>((resolve, reject) => { ws.once('message', d => resolve(String(d))); ws.once('error', reject) })
  const { headers } = JSON.parse(first) as { headers: Record<string, string> }
  t.equal(headers['x-forwarded-user'], dana.oid)
  t.equal(headers['x-forwarded-prefix'], '/admin')
  t.equal(headers.cookie, 'lc=1')
  ws.send('hello')
  t.equal(await new Promise<string>(resolve => ws.once('message', d => resolve(String(d)))), 'echo:hello')

  const aliceCookie = await cookieOf('alice')
  const refused = new WebSocket(`${stack.url.replace('http', 'ws')}/admin/ws`, { headers: { cookie: aliceCookie } })
  const status = await new Promise<number>(resolve => {
    refused.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    refused.once('open', () => resolve(101))
    refused.once('error', () => resolve(-1))
  })
  t.equal(status, 403, 'alice lacks ADMIN: the upgrade is refused')
})

t.test('a host route inherits no public path and no logout coupling', async t => {
  const { stack, rag, cookieOf } = await routedStack(t)
  t.equal((await fetch(`${stack.url}/api/config`, { headers: json })).status, 200, 'public on the main site')
  const before = rag.requests.length
  t.equal((await withHost(`${stack.url}/api/config`, 'rag.example.com')).status, 401, 'not on rag.example.com')
  t.equal(rag.requests.length, before)

  // The RAG service answering its own /api/auth/logout does not sign the user out of the gateway.
  const cookie = await cookieOf('alice')
  t.equal((await withHost(`${stack.url}/api/auth/logout`, 'rag.example.com', { method: 'POST', cookie })).status, 200)
  t.equal((await fetch(`${stack.url}/c/new`, { headers: { ...json, cookie } })).status, 200, 'still signed in')
  // LibreChat's own (the default upstream's) still does.
  t.equal((await fetch(`${stack.url}/api/auth/logout`, { method: 'POST', headers: { ...json, cookie } })).status, 200)
  t.equal((await fetch(`${stack.url}/c/new`, { headers: { ...json, cookie } })).status, 401)
})

t.test('/readyz checks each route\'s upstream and names the one that is down', async t => {
  const { stack, rag } = await routedStack(t)
  const ready = async (): Promise<{ status: number, body: { status: string, checks: Record<string, string> } }> => {
    const res = await fetch(`${stack.url}/readyz`)
    return { status: res.status, body: await res.json() as { status: string, checks: Record<string, string> } }
  }
  let r = await ready()
  for (let i = 0; i < 200 && r.body.checks.idp !== 'ok'; i++) {
    await new Promise(resolve => setImmediate(resolve))
    r = await ready()
  }
  t.equal(r.status, 200)
  t.same(r.body, { status: 'ready', checks: { idp: 'ok', session_store: 'ok', upstream: 'ok', upstream_capacity: 'ok', 'upstream:/admin': 'ok', 'upstream:/rag': 'ok', 'upstream:rag.example.com': 'ok' } })

  await rag.close()
  r = await ready()
  t.equal(r.status, 200, 'the rest of the site still works: degraded, not out of the load balancer')
  t.equal(r.body.status, 'degraded')
  t.equal(r.body.checks['upstream:/rag'], 'down: not answering')
  t.equal(r.body.checks['upstream:rag.example.com'], 'down: not answering')
  t.equal(r.body.checks['upstream:/admin'], 'ok')
  t.equal(r.body.checks.upstream, 'ok')
  t.notMatch(JSON.stringify(r.body), /127\.0\.0\.1|ECONN|http:/, 'nothing internal is shown')
  t.ok(stack.logs.some(l => l.event === 'not_ready' && l.check === 'upstream:/rag'))

  // A request to it gets the usual prompt 502, logged with the route's name.
  const cookie = await (async () => {
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, 'alice', 'alice')
    return `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  })()
  t.equal((await fetch(`${stack.url}/rag/x`, { headers: { ...json, cookie } })).status, 502)
  t.ok(stack.logs.some(l => l.event === 'upstream_error' && l.route === '/rag'))
})

t.test('a bad ROUTES value stops the start with one line naming ROUTES', async t => {
  const err = await startStack({ env: { ROUTES: '/admin=admin-panel:3000' } }).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof ConfigError)
  t.same((err as ConfigError).problems, ['ROUTES entry "/admin=admin-panel:3000": the upstream "admin-panel:3000" must start with http:// or https://.'])
})
