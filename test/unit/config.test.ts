import t from 'tap'
import { availableParallelism } from 'node:os'
import { loadConfig, ConfigError, knownVariables, parseSections } from '../../src/config.js'

const base = {
  OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/',
  OPENID_CLIENT_ID: '8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d',
  OPENID_CLIENT_SECRET: 'client-secret-value',
  OPENID_SESSION_SECRET: 'x'.repeat(40),
  DOMAIN_SERVER: 'https://chat.example.com',
  UPSTREAM_URL: 'http://api:3080'
}

function problemsOf (env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test("the guide's settings with their meaning and defaults", async t => {
  const c = loadConfig(base)
  t.equal(c.issuer, 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0', 'trailing slash of the guide removed')
  t.equal(c.issuerTenantId, '11111111-2222-3333-4444-555555555555')
  t.equal(c.scope, 'openid profile email')
  t.equal(c.callbackPath, '/oauth/openid/callback')
  t.equal(c.redirectUri, 'https://chat.example.com/oauth/openid/callback')
  t.equal(c.clientUrl, 'https://chat.example.com/')
  t.equal(c.postLogoutRedirectUri, 'https://chat.example.com/')
  t.equal(c.port, 3080)
  t.equal(c.shutdownTimeoutSeconds, 8, "below Docker's 10 s stop timeout")
  t.equal(c.headersTimeoutSeconds, 60)
  t.equal(c.keepAliveTimeoutSeconds, 72, 'above the 60 s idle timeout of common load balancers')
  t.equal(c.sessionStore, 'memory')
  t.same(c.trustedProxies, [])
  t.equal(c.requiredRole, undefined)
  t.equal(c.cookieName, '__Host-entra-gw')
  t.equal(c.secureCookies, true)
  const r = loadConfig({ ...base, OPENID_REQUIRED_ROLE: 'ChatUser, Admin', OPENID_REQUIRED_ROLE_TOKEN_KIND: 'access', OPENID_REQUIRED_ROLE_PARAMETER_PATH: 'realm_access.roles' })
  t.same(r.requiredRole, { roles: ['ChatUser', 'Admin'], tokenKind: 'access', path: ['realm_access', 'roles'] })
  const h = loadConfig({ ...base, DOMAIN_SERVER: 'http://localhost:3080', OPENID_ISSUER: 'http://127.0.0.1:9999/abc/v2.0' })
  t.equal(h.cookieName, 'entra-gw')
  t.equal(h.secureCookies, false)
  t.equal(h.issuerTenantId, undefined)
  t.same(loadConfig({ ...base, OPENID_SESSION_SECRET: `${'a'.repeat(32)},${'b'.repeat(32)}` }).sessionSecrets, ['a'.repeat(32), 'b'.repeat(32)])
})

t.test('every configuration error is one line naming the variable', async t => {
  const cases: Array<[Record<string, string | undefined>, string]> = [
    [{ OPENID_ISSUER: undefined }, 'OPENID_ISSUER is not set'],
    [{ OPENID_ISSUER: 'login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0' }, 'OPENID_ISSUER must be an absolute URL'],
    [{ OPENID_ISSUER: 'http://login.example.com/t/v2.0' }, 'OPENID_ISSUER must use https://'],
    [{ OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration' }, 'not the .well-known'],
    [{ OPENID_ISSUER: 'ftp://x/y' }, 'OPENID_ISSUER must start with https://'],
    [{ OPENID_CLIENT_ID: undefined }, 'OPENID_CLIENT_ID is not set'],
    [{ OPENID_CLIENT_SECRET: '' }, 'OPENID_CLIENT_SECRET is not set'],
    [{ OPENID_SESSION_SECRET: undefined }, 'OPENID_SESSION_SECRET is not set'],
    [{ OPENID_SESSION_SECRET: 'Any random string' }, 'OPENID_SESSION_SECRET must be at least 32 characters'],
    [{ OPENID_SCOPE: 'profile email' }, 'OPENID_SCOPE must include "openid"'],
    [{ OPENID_CALLBACK_URL: 'oauth/cb' }, 'OPENID_CALLBACK_URL must be a path'],
    [{ SHUTDOWN_TIMEOUT_SECONDS: '8s' }, 'SHUTDOWN_TIMEOUT_SECONDS must be a whole number'],
    [{ HEADERS_TIMEOUT_SECONDS: '0' }, 'HEADERS_TIMEOUT_SECONDS must be a whole number from 1'],
    [{ KEEP_ALIVE_TIMEOUT_SECONDS: '-1' }, 'KEEP_ALIVE_TIMEOUT_SECONDS must be a whole number'],
    [{ OPENID_CALLBACK_URL: '//evil/cb' }, 'OPENID_CALLBACK_URL must be a path'],
    [{ DOMAIN_SERVER: undefined }, 'DOMAIN_SERVER is not set'],
    [{ DOMAIN_SERVER: 'https://chat.example.com/app' }, 'DOMAIN_SERVER must be an origin without a path'],
    [{ DOMAIN_CLIENT: 'nope' }, 'DOMAIN_CLIENT must be an absolute URL'],
    [{ OPENID_USE_END_SESSION_ENDPOINT: 'maybe' }, 'OPENID_USE_END_SESSION_ENDPOINT must be true or false'],
    [{ OPENID_POST_LOGOUT_REDIRECT_URI: '/relative' }, 'OPENID_POST_LOGOUT_REDIRECT_URI must be an absolute URL'],
    [{ PORT: '99999' }, 'PORT must be a whole number from 0 to 65535'],
    [{ PORT: 'abc' }, 'PORT must be a whole number'],
    [{ UPSTREAM_URL: undefined }, 'UPSTREAM_URL is not set'],
    [{ UPSTREAM_URL: 'api:3080' }, 'UPSTREAM_URL must'],
    [{ UPSTREAM_HEALTH_PATH: 'health' }, 'UPSTREAM_HEALTH_PATH must be a path'],
    [{ SESSION_STORE: 'postgres' }, 'SESSION_STORE must be "memory" or "redis"'],
    [{ SESSION_STORE: 'redis' }, 'REDIS_URL is not set'],
    [{ SESSION_STORE: 'redis', REDIS_URL: 'http://redis' }, 'REDIS_URL must start with redis://'],
    [{ SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'a:6379' }, 'REDIS_URL and REDIS_CLUSTER_NODES are alternatives'],
    [{ SESSION_STORE: 'redis', REDIS_SENTINELS: 's1:26379,s2:26379' }, 'REDIS_SENTINEL_NAME is not set'],
    [{ SESSION_STORE: 'redis', REDIS_SENTINELS: 's1:26379,s2', REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINELS must be a comma-separated list of host:port such as sentinel-1:26379'],
    [{ SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: 'a:6379,b:99999' }, 'REDIS_CLUSTER_NODES must be a comma-separated list of host:port'],
    [{ SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINEL_NAME is set without REDIS_SENTINELS'],
    [{ SESSION_STORE: 'redis', REDIS_URL: 'redis://u:p@r:6379', REDIS_PASSWORD: 'other-password' }, 'REDIS_URL carries credentials and REDIS_USERNAME/REDIS_PASSWORD are set too'],
    [{ SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', REDIS_TLS: 'true' }, 'REDIS_TLS=true with a redis:// REDIS_URL: write the URL as rediss://'],
    [{ SESSION_STORE: 'redis', REDIS_CLUSTER_NODES: 'a:6379', REDIS_USERNAME: 'gateway' }, 'REDIS_USERNAME is set without REDIS_PASSWORD'],
    [{ WORKERS: '2' }, 'WORKERS=2 needs SESSION_STORE=redis'],
    [{ WORKERS: 'auto' }, 'WORKERS=auto needs SESSION_STORE=redis'],
    [{ WORKERS: '0', SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379' }, 'WORKERS must be a whole number from 1 to 1024, or auto'],
    [{ TRUSTED_PROXIES: '10.0.0.0/8,banana' }, 'TRUSTED_PROXIES must be a comma-separated list'],
    [{ TRUSTED_PROXIES: '10.0.0.0/33' }, 'TRUSTED_PROXIES must be a comma-separated list'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL must be one of'],
    [{ OPENID_REQUIRED_ROLE_TOKEN_KIND: 'refresh' }, 'OPENID_REQUIRED_ROLE_TOKEN_KIND must be one of id, access, userinfo'],
    [{ OPENID_REQUIRED_ROLE_PARAMETER_PATH: 'a..b' }, 'OPENID_REQUIRED_ROLE_PARAMETER_PATH must be a dot path'],
    [{ SESSION_EXPIRY_SECONDS: '5' }, 'SESSION_EXPIRY_SECONDS must be a whole number']
  ]
  for (const [change, expected] of cases) {
    const problems = problemsOf({ ...base, ...change })
    t.equal(problems.length, 1, `${JSON.stringify(change)} gives one line`)
    t.match(problems[0] ?? '', expected, expected)
    t.notMatch(problems.join('\n'), /client-secret-value|xxxxxxxxxxxxxxxx/, 'no secret is echoed')
  }
})

t.test('Redis in each form: one server, Sentinel, Cluster; credentials and TLS; WORKERS', async t => {
  const redis = (env: Record<string, string>): unknown => loadConfig({ ...base, SESSION_STORE: 'redis', ...env }).redis
  t.same(redis({ REDIS_URL: 'rediss://gw:p%40ss@r:6380/2' }), { target: { kind: 'url', url: 'rediss://gw:p%40ss@r:6380/2' }, username: 'gw', password: 'p@ss', tls: true }, 'credentials and TLS from the URL')
  t.same(redis({ REDIS_URL: 'redis://r:6379', REDIS_USERNAME: 'gw', REDIS_PASSWORD: 'pw' }), { target: { kind: 'url', url: 'redis://r:6379' }, username: 'gw', password: 'pw', tls: false }, 'or beside it')
  t.same(redis({ REDIS_SENTINELS: 's1:26379, [::1]:26380', REDIS_SENTINEL_NAME: 'mymaster', REDIS_SENTINEL_PASSWORD: 'sp', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true' }), {
    target: { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }], name: 'mymaster', sentinelPassword: 'sp' }, username: undefined, password: 'pw', tls: true
  })
  t.same(redis({ REDIS_CLUSTER_NODES: 'a:6379,b:6379' }), { target: { kind: 'cluster', nodes: [{ host: 'a', port: 6379 }, { host: 'b', port: 6379 }] }, username: undefined, password: undefined, tls: false })
  t.equal(loadConfig({ ...base, REDIS_SENTINELS: 'ignored' }).redis, undefined, 'the memory store reads no Redis setting')
  t.equal(loadConfig(base).workers, 1, 'one process by default')
  t.equal(loadConfig({ ...base, SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', WORKERS: 'auto' }).workers, availableParallelism(), 'auto: the CPUs this process may use')
  t.equal(loadConfig({ ...base, SESSION_STORE: 'redis', REDIS_URL: 'redis://r:6379', WORKERS: '3' }).workers, 3)
  for (const name of ['WORKERS', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD', 'REDIS_CLUSTER_NODES', 'REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS']) t.ok(knownVariables().includes(name), `${name} is a known variable`)
})

t.test('all problems are reported at once', async t => {
  const problems = problemsOf({})
  t.ok(problems.length >= 6)
  for (const name of ['OPENID_ISSUER', 'OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_SESSION_SECRET', 'DOMAIN_SERVER', 'UPSTREAM_URL']) {
    t.ok(problems.some(p => p.startsWith(name)), name)
  }
})

// LibreChat's "OpenID with Azure Entra" guide, exactly as it shows these lines.
const GUIDE = {
  OPENID_CLIENT_ID: 'Your Application (client) ID',
  OPENID_CLIENT_SECRET: 'Your client secret',
  OPENID_ISSUER: 'https://login.microsoftonline.com/Your Directory (tenant ID)/v2.0/',
  OPENID_SESSION_SECRET: 'Any random string'
}

t.test("the guide's placeholders, pasted as is, do not start the gateway", async t => {
  const one = (change: Record<string, string>): string => {
    const problems = problemsOf({ ...base, ...change })
    t.equal(problems.length, 1, `${JSON.stringify(change)} gives one line: ${problems.join(' | ')}`)
    return problems[0] ?? ''
  }
  const clientId = one({ OPENID_CLIENT_ID: GUIDE.OPENID_CLIENT_ID })
  t.match(clientId, /^OPENID_CLIENT_ID .*placeholder; copy the Application \(client\) ID from the app registration's Overview page/)
  const issuer = one({ OPENID_ISSUER: GUIDE.OPENID_ISSUER })
  t.match(issuer, /^OPENID_ISSUER .*placeholder; set it to https:\/\/login\.microsoftonline\.com\/<tenant-id>\/v2\.0 with the Directory \(tenant\) ID/)
  const secret = one({ OPENID_CLIENT_SECRET: GUIDE.OPENID_CLIENT_SECRET })
  t.match(secret, /^OPENID_CLIENT_SECRET .*placeholder; set it to the secret's Value/)
  t.notMatch(secret, 'Your client secret', 'the secret is not echoed')

  // The guide's whole block at once: one line per variable, each naming its own fix.
  const all = problemsOf({ ...base, ...GUIDE })
  t.same(all.map(p => /^[A-Z_]+/.exec(p)?.[0]).sort(), ['OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_ISSUER', 'OPENID_SESSION_SECRET'], all.join('\n'))
})

t.test('a client id that is not a GUID names the Application (client) ID', async t => {
  for (const bad of ['gateway-test-client', 'client-id', '{8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d}', 'api://8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d', '8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1', 'abc8Q~secret.value-0123456789abcdefghijklm']) {
    const problems = problemsOf({ ...base, OPENID_CLIENT_ID: bad })
    t.equal(problems.length, 1, bad)
    t.match(problems[0], /^OPENID_CLIENT_ID must be a GUID, as every Application \(client\) ID is; copy the Application \(client\) ID from/, bad)
    t.notMatch(problems[0], bad, 'the value is not echoed (it may be the secret, pasted in the wrong field)')
  }
  t.equal(loadConfig({ ...base, OPENID_CLIENT_ID: '8F7E6D5C-4B3A-4291-8C7D-6E5F4A3B2C1D' }).clientId, '8F7E6D5C-4B3A-4291-8C7D-6E5F4A3B2C1D', 'upper case is a GUID too, kept as written')
  t.equal(loadConfig({ ...base, OPENID_CLIENT_ID: ' 8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d\n' }).clientId, '8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d', 'surrounding whitespace is trimmed, not a placeholder')
})

t.test('an issuer on a Microsoft login host must name a tenant Entra knows', async t => {
  const tenant = '11111111-2222-3333-4444-555555555555'
  const refused = [
    'https://login.microsoftonline.com/Contoso/v2.0', // the tenant's display name
    'https://login.microsoftonline.com/tenant-id/v2.0',
    'https://login.microsoftonline.com/%3Ctenant-id%3E/v2.0/', // the README's <tenant-id>, as a browser would copy it
    'https://login.microsoftonline.com/{tenantid}/v2.0', // the metadata's template
    'https://login.microsoftonline.com/v2.0',
    'https://login.microsoftonline.com/',
    `https://login.microsoftonline.com/${tenant.slice(0, -1)}/v2.0`,
    'https://LOGIN.MicrosoftOnline.com/Contoso/v2.0',
    'https://login.microsoftonline.us/Contoso/v2.0',
    'https://login.chinacloudapi.cn/Contoso/v2.0',
    'https://login.partner.microsoftonline.cn/Contoso/v2.0',
    'https://login.microsoftonline.de/Contoso/v2.0',
    'https://login.windows.net/Contoso/',
    'https://sts.windows.net/Contoso/'
  ]
  for (const issuer of refused) {
    const problems = problemsOf({ ...base, OPENID_ISSUER: issuer })
    t.equal(problems.length, 1, `${issuer}: ${problems.join(' | ')}`)
    t.match(problems[0], /^OPENID_ISSUER must name the Directory \(tenant\) ID after .*; set it to https:\/\/login\.microsoftonline\.com\/<tenant-id>\/v2\.0 with the Directory \(tenant\) ID from the app registration's Overview page/, issuer)
  }
  t.match(problemsOf({ ...base, OPENID_ISSUER: 'https://login.microsoftonline.com/{tenantid}/v2.0' })[0], 'got "{tenantid}"', 'the tenant is shown as written')

  // Near misses that are real Entra issuers, and issuers of other hosts (not Entra's to judge).
  const accepted: Array<[string, Record<string, string>?]> = [
    [`https://login.microsoftonline.com/${tenant}/v2.0/`],
    [`https://login.microsoftonline.com/${tenant.toUpperCase()}/v2.0`],
    ['https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/'],
    ['https://login.microsoftonline.com/contoso.com/v2.0'],
    ['https://login.microsoftonline.com/xn--mller-kva.de/v2.0'],
    ['https://login.microsoftonline.com/common/v2.0', { OPENID_ALLOWED_TENANTS: tenant }],
    ['https://login.microsoftonline.com/organizations/v2.0', { OPENID_ALLOWED_TENANTS: tenant }],
    ['https://login.microsoftonline.com/consumers/v2.0', { OPENID_ALLOWED_TENANTS: '9188040d-6c67-4c5b-b112-36a304b66dad' }],
    [`https://login.microsoftonline.us/${tenant}/v2.0`],
    [`https://login.chinacloudapi.cn/${tenant}/v2.0`],
    [`https://sts.windows.net/${tenant}/`],
    [`http://127.0.0.1:49152/${tenant}/v2.0`], // the local test IdP
    ['http://localhost:8080/realms/demo'],
    ['https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/v2.0/']
  ]
  for (const [issuer, extra] of accepted) {
    t.same(problemsOf({ ...base, OPENID_ISSUER: issuer, ...extra }), [], issuer)
  }
})

t.test('a URL with spaces still holds a placeholder', async t => {
  const cases: Array<[string, string]> = [
    ['DOMAIN_SERVER', 'https://Your domain'],
    ['DOMAIN_CLIENT', 'https://chat.example.com/Your path'],
    ['UPSTREAM_URL', 'http://api:3080/ librechat'],
    ['OPENID_POST_LOGOUT_REDIRECT_URI', 'https://chat.example.com/signed out'],
    ['OPENID_IMAGE_URL', 'https://chat.example.com/Your logo.png'],
    ['OPENID_ISSUER', 'https://login.microsoftonline.com/\t11111111-2222-3333-4444-555555555555/v2.0']
  ]
  for (const [name, value] of cases) {
    const problems = problemsOf({ ...base, [name]: value })
    t.equal(problems.length, 1, `${name}=${value}: ${problems.join(' | ')}`)
    t.match(problems[0], new RegExp(`^${name} contains spaces, so it still holds (a|the guide's) placeholder; set it to `), name)
  }
  t.equal(loadConfig({ ...base, DOMAIN_SERVER: '  https://chat.example.com  ' }).publicOrigin, 'https://chat.example.com', 'spaces around a value are trimmed')
})

t.test('each section reports its own problems; the others keep their values', async t => {
  const sections = parseSections({ ...base, OPENID_SESSION_SECRET: undefined, UPSTREAM_URL: 'api:3080' })
  t.same(sections.identityProvider.problems, [], 'the identity provider parsed')
  t.equal(sections.identityProvider.values.issuer, 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0')
  t.same(sections.session.problems.map(p => p.variable), ['OPENID_SESSION_SECRET'])
  t.same(sections.upstream.problems.map(p => p.variable), ['UPSTREAM_URL'])
  t.equal(sections.session.values.cookieName, '__Host-entra-gw', 'from the identity provider section it depends on')
  t.same(Object.values(sections).flatMap(s => s.problems).map(p => p.variable), ['OPENID_SESSION_SECRET', 'UPSTREAM_URL'], 'and nothing else')
})

t.test('Graph scopes may be separated by commas or spaces, bare or full', async t => {
  const want = ['https://graph.microsoft.com/User.Read', 'https://graph.microsoft.com/People.Read']
  for (const list of ['User.Read,People.Read', 'User.Read People.Read', ' User.Read, https://graph.microsoft.com/People.Read ']) {
    t.same(loadConfig({ ...base, OPENID_GRAPH_SCOPES: list }).graphScopes, want, list)
  }
})
