import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, knownVariables, parseSections } from '../../src/config.js'
import { BASE_ENV, problemsOf } from '../helpers/config.js'

const base = BASE_ENV

t.test("the guide's settings with their meaning and defaults", async t => {
  const c = loadConfig(base)
  t.equal(c.issuer, 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0', 'trailing slash of the guide removed')
  t.equal(c.issuerTenantId, '11111111-2222-3333-4444-555555555555')
  t.equal(c.scope, 'openid profile email')
  t.equal(c.callbackPath, '/oauth/openid/callback')
  t.equal(c.redirectUri, 'https://chat.example.com/oauth/openid/callback')
  t.equal(c.clientUrl, 'https://chat.example.com/')
  t.equal(c.postLogoutRedirectUri, 'https://chat.example.com/oauth2/signed_out', "the gateway's signed-out page, not LibreChat's DOMAIN_CLIENT/login")
  t.equal(c.maxLogoutUrlLength, 2000)
  t.equal(c.clockToleranceSeconds, 300)
  t.equal(c.tokenEndpointAuthMethod, 'client_secret_post')
  t.equal(c.audience, undefined)
  t.same(c.claimNames, { username: undefined, name: undefined, email: undefined })
  t.equal(c.authzRecheckSeconds, 900)
  t.same(c.notices, [], 'nothing to say about a clean configuration')
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
})

t.test('OPENID_SESSION_SECRET: one secret of 16 characters or more, commas and all; older ones in _PREVIOUS', async t => {
  const comma = loadConfig({ ...base, OPENID_SESSION_SECRET: `${'a'.repeat(32)},${'b'.repeat(32)}` })
  t.same(comma.sessionSecrets, [`${'a'.repeat(32)},${'b'.repeat(32)}`], 'a comma is part of the secret')
  t.same(comma.notices.map(n => [n.variable, n.level]), [['OPENID_SESSION_SECRET', 'warn']], 'and is said once at start')
  t.match(comma.notices[0]?.message, /used whole, as one secret .*OPENID_SESSION_SECRET_PREVIOUS/)
  t.notMatch(comma.notices[0]?.message, 'aaaa', 'no secret in the line')

  const rotated = loadConfig({ ...base, OPENID_SESSION_SECRET: 'n'.repeat(40), OPENID_SESSION_SECRET_PREVIOUS: ` ${'o'.repeat(32)} , ${'p'.repeat(20)}` })
  t.same(rotated.sessionSecrets, ['n'.repeat(40), 'o'.repeat(32), 'p'.repeat(20)], 'the newest first, then the older ones')
  t.same(rotated.notices.map(n => n.variable), ['OPENID_SESSION_SECRET_PREVIOUS'], 'a short older one is warned about')

  const short = loadConfig({ ...base, OPENID_SESSION_SECRET: 's'.repeat(20) })
  t.same(short.sessionSecrets, ['s'.repeat(20)], '20 characters are accepted')
  t.same(short.notices.map(n => [n.variable, n.level]), [['OPENID_SESSION_SECRET', 'warn']])
  t.match(short.notices[0]?.message, /^OPENID_SESSION_SECRET is shorter than 32 characters: accepted/)
  t.same(loadConfig({ ...base, OPENID_SESSION_SECRET: 's'.repeat(16) }).sessionSecrets, ['s'.repeat(16)], '16 is the least')
  t.same(loadConfig({ ...base, OPENID_SESSION_SECRET: 's'.repeat(32) }).notices, [], '32 and up: nothing to say')

  t.match(problemsOf({ ...base, OPENID_SESSION_SECRET: 's'.repeat(15) }), [/^OPENID_SESSION_SECRET is too short: OPENID_SESSION_SECRET must be at least 16 characters/])
  t.match(problemsOf({ ...base, OPENID_SESSION_SECRET_PREVIOUS: 'short-old' }), [/^OPENID_SESSION_SECRET_PREVIOUS is too short: each older secret must be at least 16/])
  t.notMatch(problemsOf({ ...base, OPENID_SESSION_SECRET: 's'.repeat(15) }).join(), 'sss', 'no secret in the line')
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
    [{ OPENID_SESSION_SECRET: 'Any random string' }, "OPENID_SESSION_SECRET still holds the guide's placeholder"],
    [{ OPENID_SESSION_SECRET: 'short-secret' }, 'OPENID_SESSION_SECRET is too short'],
    [{ OPENID_MAX_LOGOUT_URL_LENGTH: '0' }, 'OPENID_MAX_LOGOUT_URL_LENGTH must be a whole number from 1'],
    [{ OPENID_MAX_LOGOUT_URL_LENGTH: '2k' }, 'OPENID_MAX_LOGOUT_URL_LENGTH must be a whole number'],
    [{ OPENID_CLOCK_TOLERANCE: '5m' }, 'OPENID_CLOCK_TOLERANCE must be a whole number from 0 to 3600'],
    [{ OPENID_TOKEN_ENDPOINT_AUTH_METHOD: 'private_key_jwt' }, 'OPENID_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt needs a certificate (OPENID_CLIENT_CERTIFICATE_PATH) or a federated token (AZURE_FEDERATED_TOKEN_FILE) instead of OPENID_CLIENT_SECRET'],
    [{ OPENID_TOKEN_ENDPOINT_AUTH_METHOD: 'client_secret_jwt' }, 'OPENID_TOKEN_ENDPOINT_AUTH_METHOD must be client_secret_post, client_secret_basic or private_key_jwt'],
    [{ OPENID_TOKEN_ENDPOINT_AUTH_METHOD: 'none' }, 'OPENID_TOKEN_ENDPOINT_AUTH_METHOD=none is not supported'],
    [{ OPENID_REUSE_TOKENS: 'true', OPENID_REUSE_MAX_SESSION_AGE_MS: 'fifteen minutes' }, 'OPENID_REUSE_MAX_SESSION_AGE_MS must be a number of milliseconds'],
    [{ OPENID_REUSE_TOKENS: 'true', OPENID_REUSE_MAX_SESSION_AGE_MS: '1000' }, 'OPENID_REUSE_MAX_SESSION_AGE_MS must be from 30000'],
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

t.test("LibreChat's other OpenID settings, read as LibreChat reads them", async t => {
  const c = loadConfig({
    ...base,
    OPENID_CLOCK_TOLERANCE: '45',
    OPENID_MAX_LOGOUT_URL_LENGTH: '8000',
    OPENID_AUDIENCE: 'api://librechat',
    OPENID_TOKEN_ENDPOINT_AUTH_METHOD: ' client_secret_basic ',
    OPENID_USERNAME_CLAIM: 'upn',
    OPENID_NAME_CLAIM: 'display_name',
    OPENID_EMAIL_CLAIM: 'mail'
  })
  t.equal(c.clockToleranceSeconds, 45, 'seconds')
  t.equal(c.maxLogoutUrlLength, 8000)
  t.equal(c.audience, 'api://librechat', 'as written')
  t.equal(c.tokenEndpointAuthMethod, 'client_secret_basic')
  t.same(c.claimNames, { username: 'upn', name: 'display_name', email: 'mail' })
  t.same(c.notices, [])
  t.equal(loadConfig({ ...base, OPENID_POST_LOGOUT_REDIRECT_URI: 'https://intranet.example.com/bye' }).postLogoutRedirectUri, 'https://intranet.example.com/bye', 'an explicit one wins')
})

t.test('OPENID_REUSE_MAX_SESSION_AGE_MS: how long tokens are used before a refresh, with OPENID_REUSE_TOKENS', async t => {
  const used = loadConfig({ ...base, OPENID_REUSE_TOKENS: 'true', OPENID_REUSE_MAX_SESSION_AGE_MS: '1000 * 60 * 5' })
  t.equal(used.authzRecheckSeconds, 300, "LibreChat's arithmetic form, in milliseconds")
  t.same(used.notices.map(n => [n.variable, n.level]), [['OPENID_REUSE_MAX_SESSION_AGE_MS', 'info']])
  t.match(used.notices[0]?.message, /at least every 300 s .*does not lengthen sessions/)
  t.equal(loadConfig({ ...base, OPENID_REUSE_TOKENS: 'true', OPENID_REUSE_MAX_SESSION_AGE_MS: '(1000 * 60 * 60) * 2' }).authzRecheckSeconds, 7200)

  const noReuse = loadConfig({ ...base, OPENID_REUSE_MAX_SESSION_AGE_MS: '300000' })
  t.equal(noReuse.authzRecheckSeconds, 900, 'without token reuse it is not used, as in LibreChat')
  t.match(noReuse.notices[0]?.message, /^OPENID_REUSE_MAX_SESSION_AGE_MS is not used: as in LibreChat it applies only with OPENID_REUSE_TOKENS=true/)

  const own = loadConfig({ ...base, OPENID_REUSE_TOKENS: 'true', OPENID_REUSE_MAX_SESSION_AGE_MS: '300000', AUTHZ_RECHECK_SECONDS: '120' })
  t.equal(own.authzRecheckSeconds, 120, "the gateway's own setting wins")
  t.match(own.notices[0]?.message, /^OPENID_REUSE_MAX_SESSION_AGE_MS is not used: AUTHZ_RECHECK_SECONDS \(120 s\) is set/)
})

t.test('PKCE and the nonce are always on: a false value is accepted and answered with one line', async t => {
  const c = loadConfig({ ...base, OPENID_USE_PKCE: 'false', OPENID_GENERATE_NONCE: 'false' })
  t.same(c.notices.map(n => [n.variable, n.level]), [['OPENID_USE_PKCE', 'info'], ['OPENID_GENERATE_NONCE', 'info']])
  t.match(c.notices[0]?.message, 'always sends PKCE (S256)')
  t.match(c.notices[1]?.message, 'always sends a nonce')
  t.same(loadConfig({ ...base, OPENID_USE_PKCE: 'true', OPENID_GENERATE_NONCE: 'TRUE' }).notices, [], 'true: nothing to say')
})

t.test("LibreChat's OPENID_* settings the gateway does not use are named, one line each", async t => {
  const c = loadConfig({
    ...base,
    OPENID_ADMIN_ROLE: 'Admin',
    OPENID_ADMIN_ROLE_PARAMETER_PATH: 'roles',
    OPENID_JWKS_URL_CACHE_ENABLED: 'true',
    OPENID_ON_BEHALF_FLOW_FOR_USERINFO_REQUIRED: 'true',
    OPENID_ROLE_SYNC_CLAIM: '', // empty: means nothing, to LibreChat either
    OPENID_MADE_UP: 'x',
    ALLOW_SOCIAL_LOGIN: 'true', // the guide names it; LibreChat's alone
    ALLOW_REGISTRATION: 'false' // LibreChat's too, but no OpenID setting: not the gateway's to list
  })
  t.same(c.notices.map(n => n.variable), ['ALLOW_SOCIAL_LOGIN', 'OPENID_ADMIN_ROLE', 'OPENID_ADMIN_ROLE_PARAMETER_PATH', 'OPENID_JWKS_URL_CACHE_ENABLED', 'OPENID_MADE_UP', 'OPENID_ON_BEHALF_FLOW_FOR_USERINFO_REQUIRED'])
  t.ok(c.notices.every(n => n.level === 'info'))
  t.match(c.notices[1]?.message, /^OPENID_ADMIN_ROLE is not used by the gateway \(LibreChat still reads it\): LibreChat maps it to its own ADMIN role/)
  t.match(c.notices[4]?.message, /^OPENID_MADE_UP is not a setting of the gateway/)
  t.notOk(knownVariables().includes('OPENID_ADMIN_ROLE'), 'not a setting of the gateway')
})

t.test('a post-logout page behind the gateway that needs a session is warned about', async t => {
  const login = loadConfig({ ...base, OPENID_POST_LOGOUT_REDIRECT_URI: 'https://chat.example.com/login' })
  t.same(login.notices.map(n => [n.variable, n.level]), [['OPENID_POST_LOGOUT_REDIRECT_URI', 'warn']], "LibreChat's own default would sign the user back in")
  t.match(login.notices[0]?.message, 'use https://chat.example.com/oauth2/signed_out (the default), or make /login public in AUTHZ_RULES_FILE')
  t.same(loadConfig({ ...base, OPENID_POST_LOGOUT_REDIRECT_URI: 'https://chat.example.com/oauth2/signed_out' }).notices, [], 'the signed-out page')
  t.same(loadConfig({ ...base, OPENID_POST_LOGOUT_REDIRECT_URI: 'https://intranet.example.com/' }).notices, [], 'another site')
  const dir = await mkdtemp(join(tmpdir(), 'rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'authz.yaml')
  await writeFile(file, 'public:\n  - /bye\n')
  t.same(loadConfig({ ...base, OPENID_POST_LOGOUT_REDIRECT_URI: 'https://chat.example.com/bye', AUTHZ_RULES_FILE: file }).notices, [], 'a public path')
})
