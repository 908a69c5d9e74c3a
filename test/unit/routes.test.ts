// The route choice (a pure function compiled once), its normalization attacks, the stripped
// target, ROUTES's syntax and its one-line problems, and how a route's rules compose with the
// global and per-path ones in decide().
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseRoute, compileRoute, normalizeHost, parseRoutesVariable, routeTable, strippedTarget, type Route, type RouteSpec, type RouteTable } from '../../src/policy/routes.js'
import { compileRules, normalizePath } from '../../src/policy/rules.js'
import { decide, decideRouted, isPublicRequest, type PolicySettings } from '../../src/policy/decide.js'
import { knownVariables, loadConfig, ConfigError } from '../../src/config.js'

function route (spec: RouteSpec): Route {
  const r = compileRoute(spec)
  if ('problem' in r) throw new Error(r.problem)
  return r.route
}

function table (...specs: RouteSpec[]): RouteTable {
  const r = routeTable(specs.map(route))
  if ('problem' in r) throw new Error(r.problem)
  return r.table
}

const routes = table(
  { match: '/admin', upstream: 'http://admin-panel:3000' },
  { match: '/admin/api', upstream: 'http://admin-api:3001' },
  { match: '/rag', upstream: 'http://rag_api:8000/v1/', stripPrefix: true },
  { match: 'RAG.example.com', upstream: 'http://rag_api:8000' }
)

/** The route a raw request target and Host reach, as the gate chooses it. */
function reach (url: string, host?: string): string | undefined {
  const path = normalizePath(url)
  return chooseRoute(routes, { path, host })?.name
}

t.test('longest prefix on the normalized path, whole segments only', async t => {
  t.equal(reach('/admin'), '/admin')
  t.equal(reach('/admin/'), '/admin')
  t.equal(reach('/admin/users?x=1'), '/admin')
  t.equal(reach('/admin/api'), '/admin/api', 'the longer prefix wins')
  t.equal(reach('/admin/api/x'), '/admin/api')
  t.equal(reach('/admin/apix'), '/admin')
  t.equal(reach('/'), undefined, 'the default upstream')
  t.equal(reach('/api/convos'), undefined)
})

t.test('normalization attacks: variants of /admin meet /admin (and its rules); look-alikes do not', async t => {
  // Reaching the admin upstream by any spelling means passing its rules: the decision reads the same route.
  for (const url of ['/ADMIN', '/Admin/x', '/%61dmin', '/%41DMIN/x', '//admin', '/./admin', '/x/../admin', '/x/%2e%2e/admin', '/admin/.', '\\admin', '/x%2F..%2Fadmin']) {
    t.equal(reach(url), '/admin', url)
  }
  for (const url of ['/admin/../x', '/admin/%2e%2e/x', '/admin%2F..%2Fx', '/admin-evil', '/adminx', '/admin.evil', '/admi', '/x/admin', '/%2561dmin', '/admin%00']) {
    t.not(reach(url), '/admin', url)
    t.not(reach(url), '/admin/api', url)
  }
  t.equal(normalizePath('/%E0%A4%A'), undefined, 'undecodable: the gate refuses it before any route is chosen')
})

t.test('host routes: exact, case-insensitive, port ignored, before path routes', async t => {
  t.equal(reach('/x', 'rag.example.com'), 'rag.example.com')
  t.equal(reach('/x', 'RAG.Example.COM:8443'), 'rag.example.com')
  t.equal(reach('/admin', 'rag.example.com'), 'rag.example.com', 'a host route claims its whole host')
  t.equal(reach('/x', 'rag.example.com.'), 'rag.example.com', 'a trailing dot is the same host')
  for (const host of ['x.rag.example.com', 'rag.example.com.evil', 'rag.example.co', 'evilrag.example.com', 'rag.example.com@evil', '', undefined]) {
    t.equal(reach('/x', host), undefined, String(host))
  }
  t.equal(reach('/admin', 'chat.example.com'), '/admin', 'another host: the path routes')
  t.equal(normalizeHost('[::1]:3080'), '[::1]')
  t.equal(normalizeHost('Chat.Example.com:443'), 'chat.example.com')
})

t.test('strip_prefix: the upstream gets the rest of the raw target', async t => {
  const rag = routes.paths.find(r => r.name === '/rag') as Route
  t.equal(rag.upstreamUrl, 'http://rag_api:8000/v1', 'kept like UPSTREAM_URL: base path, no trailing slash')
  t.equal(strippedTarget(rag, '/rag'), '/')
  t.equal(strippedTarget(rag, '/rag/'), '/')
  t.equal(strippedTarget(rag, '/rag/embed?x=1&y=%2F'), '/embed?x=1&y=%2F')
  t.equal(strippedTarget(rag, '/RAG/Embed/'), '/Embed/', 'case and the trailing slash of the rest are kept')
  t.equal(strippedTarget(rag, '/%72ag/a%20b'), '/a%20b', 'the rest stays encoded as sent')
  t.equal(strippedTarget(rag, '/x/../rag//a/./b'), '/a/b')
  t.equal(strippedTarget(rag, '/x%2F..%2Frag/a'), undefined, 'an encoded / inside a segment: refused, not guessed')
  t.equal(strippedTarget(rag, '/rag%2Fa'), undefined)
  t.equal(strippedTarget(rag, '/rag/%E0%A4%A'), undefined)
})

t.test('ROUTES: syntax, and one line per problem', async t => {
  const ok = parseRoutesVariable('/admin=http://admin-panel:3000, rag.example.com=http://rag_api:8000 ,/rag=http://rag_api:8000 strip_prefix health=/healthz')
  t.same(ok.problems, [])
  t.same(ok.specs, [
    { match: '/admin', upstream: 'http://admin-panel:3000' },
    { match: 'rag.example.com', upstream: 'http://rag_api:8000' },
    { match: '/rag', upstream: 'http://rag_api:8000', stripPrefix: true, healthPath: '/healthz' }
  ])

  const base = { OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0', OPENID_CLIENT_ID: '00000000-1111-2222-3333-444444444444', OPENID_CLIENT_SECRET: 'a-client-secret-value', OPENID_SESSION_SECRET: 'x'.repeat(40), DOMAIN_SERVER: 'https://chat.example.com', UPSTREAM_URL: 'http://api:3080' }
  const problems = (value: string): string[] => {
    try {
      loadConfig({ ...base, ROUTES: value })
      return []
    } catch (err) {
      return (err as ConfigError).problems
    }
  }
  const cases: Array<[string, RegExp]> = [
    ['/admin', /^ROUTES entry "\/admin" must be <path prefix or host>=<upstream URL>, such as \/admin=http:\/\/admin-panel:3000/],
    ['/admin=', /^ROUTES entry "\/admin=" must be/],
    ['=http://x:1', /^ROUTES entry "=http:\/\/x:1" must be/],
    ['/admin=admin-panel:3000', /^ROUTES entry "\/admin=admin-panel:3000": the upstream "admin-panel:3000" must start with http:\/\/ or https:\/\//],
    ['/admin=not a url', /^ROUTES entry "\/admin=not a url" has the unknown option "a"/],
    ['/admin=http://u:p@admin:3000', /must not contain a user name or password/],
    ['/admin=http://admin:3000/?x=1', /must not have a query or fragment/],
    ['/=http://admin:3000', /the prefix \/ is every path: that is UPSTREAM_URL's job/],
    ['/oauth2/x=http://admin:3000', /overlaps the gateway's own/],
    ['/readyz=http://admin:3000', /overlaps the gateway's own/],
    ['/a/../b=http://admin:3000', /must be a plain path such as \/admin/],
    ['/%61dmin=http://admin:3000', /must be a plain path/],
    ['rag.example.com:8000=http://rag:8000', /without a port/],
    ['rag_example=http://rag:8000', /must be a path prefix starting with \/ \(such as \/admin\) or a host name/],
    ['rag.example.com=http://rag:8000 strip_prefix', /strip_prefix applies to path routes only/],
    ['/admin=http://admin:3000 strip', /unknown option "strip" \(expected strip_prefix or health=\/path after the URL\)/],
    ['/admin=http://admin:3000 health=x', /the health path "x" must be a path starting with \//],
    ['/admin=http://a:1,/ADMIN/=http://b:2', /^ROUTES: \/admin is routed twice; keep one route for it\.$/]
  ]
  for (const [value, expected] of cases) {
    const found = problems(value)
    t.equal(found.length, 1, `one problem for ${value}: ${found.join(' | ')}`)
    t.match(found[0] ?? '', expected, value)
    t.notMatch(found[0] ?? '', /\n/, 'one line')
    t.match(found[0] ?? '', /^ROUTES/, 'names ROUTES')
  }
  t.equal(problems('/admin=x, /rag=y').length, 2, 'each bad entry is its own line')
  t.same(problems(''), [], 'unset: no routes')
  t.ok(knownVariables().includes('ROUTES'))
})

t.test('the rules file: routes with their own rules; problems name the entry', async t => {
  const r = compileRules({
    routes: [
      { path: '/admin', upstream: 'http://admin-panel:3000', roles: ['ADMIN'] },
      { host: 'rag.example.com', upstream: 'http://rag_api:8000', groups: ['g-rag'], health_path: '/healthz' }
    ],
    rules: [{ path: '/api/admin', roles: ['ADMIN'] }]
  })
  if ('problem' in r) throw new Error(r.problem)
  t.same(r.routes.map(x => [x.name, x.kind, x.roles, x.groups, x.healthPath]), [['/admin', 'path', ['ADMIN'], [], '/health'], ['rag.example.com', 'host', [], ['g-rag'], '/healthz']])
  t.ok(r.rules.namedGroups.includes('g-rag'), 'a route\'s groups are kept when X-Forwarded-Groups is cut')
  const bad: Array<[unknown, RegExp]> = [
    [{ routes: {} }, /"routes" must be a list/],
    [{ routes: [{ upstream: 'http://a:1' }] }, /routes\[0\] needs either "path" \(such as \/rag\) or "host"/],
    [{ routes: [{ path: '/a', host: 'a.example', upstream: 'http://a:1' }] }, /needs either "path"/],
    [{ routes: [{ path: 'a', upstream: 'http://a:1' }] }, /"path" must start with \//],
    [{ routes: [{ host: '/a', upstream: 'http://a:1' }] }, /"host" must be a host name/],
    [{ routes: [{ path: '/a' }] }, /routes\[0\] \(\/a\) needs "upstream"/],
    [{ routes: [{ path: '/a', upstream: 'http://a:1', strip_prefix: 'yes' }] }, /"strip_prefix" must be true or false/],
    [{ routes: [{ path: '/a', upstream: 'http://a:1', role: ['X'] }] }, /unknown key "role"/],
    [{ routes: [{ path: '/a', upstream: 'ftp://a' }] }, /routes\[0\] \(\/a\): the upstream "ftp:\/\/a" must start with http/]
  ]
  for (const [doc, expected] of bad) {
    const c = compileRules(doc)
    t.match('problem' in c ? c.problem : '', expected)
  }

  // The file's routes and ROUTES join; the same prefix in both is one line naming both.
  const dir = mkdtempSync(join(tmpdir(), 'gw-routes-'))
  const file = join(dir, 'rules.yaml')
  writeFileSync(file, 'routes:\n  - path: /admin\n    upstream: http://admin-panel:3000\n    roles: [ADMIN]\n')
  const base = { OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0', OPENID_CLIENT_ID: '00000000-1111-2222-3333-444444444444', OPENID_CLIENT_SECRET: 'a-client-secret-value', OPENID_SESSION_SECRET: 'x'.repeat(40), DOMAIN_SERVER: 'https://chat.example.com', UPSTREAM_URL: 'http://api:3080', AUTHZ_RULES_FILE: file }
  const config = loadConfig({ ...base, ROUTES: 'rag.example.com=http://rag_api:8000' })
  t.same(config.routes.all.map(x => x.name), ['/admin', 'rag.example.com'])
  t.throws(() => loadConfig({ ...base, ROUTES: '/Admin=http://other:1' }), /ROUTES: \/admin is routed twice; keep one route for it \(between ROUTES and AUTHZ_RULES_FILE's routes\)\./)
})

t.test('decide(): global, then the route, then the path rule; all must hold', async t => {
  const rulesDoc = compileRules({
    public: ['/api/config'],
    rules: [{ path: '/admin/settings', groups: ['g-ops'] }],
    routes: [
      { path: '/admin', upstream: 'http://admin-panel:3000', roles: ['ADMIN'] },
      { host: 'rag.example.com', upstream: 'http://rag_api:8000', groups: ['g-rag'] }
    ]
  })
  if ('problem' in rulesDoc) throw new Error(rulesDoc.problem)
  const rt = routeTable(rulesDoc.routes)
  if ('problem' in rt) throw new Error(rt.problem)
  const policy: PolicySettings = { requiredRole: { roles: ['ChatUser'], tokenKind: 'id', path: ['roles'] }, requiredGroups: [], rules: rulesDoc.rules, routes: rt.table }
  const alice = { roleValues: ['ChatUser'], roles: ['ChatUser'], groups: ['g-ops'] }
  const admin = { roleValues: ['ChatUser', 'ADMIN'], roles: ['ChatUser', 'ADMIN'], groups: [] }
  const bob = { roleValues: [], roles: [], groups: ['g-rag'] }
  const at = (path: string, host?: string): { method: string, path: string, host?: string } => ({ method: 'GET', path: normalizePath(path) as string, host })

  t.equal(decide(policy, alice, at('/c/new')).allowed, true)
  const refused = decide(policy, alice, at('/%41dmin/users'))
  t.equal(refused.allowed, false)
  if (!refused.allowed) {
    t.equal(refused.reason, 'route_role')
    t.equal(refused.requirement, 'requires the role ADMIN for /admin')
  }
  t.equal(decide(policy, admin, at('/admin/users')).allowed, true)
  const both = decide(policy, admin, at('/admin/settings'))
  t.equal(both.allowed ? '' : both.reason, 'path_group', 'the route admits, the path rule under it still applies')
  const global = decide(policy, bob, at('/x', 'rag.example.com'))
  t.equal(global.allowed ? '' : global.reason, 'missing_role', 'the global requirement comes first')
  const ragAlice = decide(policy, alice, at('/x', 'RAG.example.com:443'))
  t.equal(ragAlice.allowed ? '' : ragAlice.reason, 'route_group')
  t.equal(decide(policy, { ...alice, groups: ['g-rag'] }, at('/x', 'rag.example.com')).allowed, true)
  t.equal(decide(policy, alice, at('/admin/../x')).allowed, true, '/admin/../x is not the admin route')

  // A caller that chose the route already gets the same answer.
  const req = at('/admin')
  t.same(decideRouted(policy, alice, req, chooseRoute(rt.table, req)), decide(policy, alice, req))
  t.equal(decide(policy, alice).allowed, true, 'without a request: the global requirements only')

  // Public paths hold on the default upstream and path routes, never on a host route.
  t.ok(isPublicRequest(policy, at('/api/config'), undefined))
  t.notOk(isPublicRequest(policy, at('/api/config', 'rag.example.com'), chooseRoute(rt.table, at('/api/config', 'rag.example.com'))))
})
