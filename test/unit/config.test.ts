import t from 'tap'
import { loadConfig, ConfigError } from '../../src/config.js'

const base = {
  OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/',
  OPENID_CLIENT_ID: 'client-id',
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
    [{ OPENID_ISSUER: 'not a url' }, 'OPENID_ISSUER must be an absolute URL'],
    [{ OPENID_ISSUER: 'http://login.example.com/t/v2.0' }, 'OPENID_ISSUER must use https://'],
    [{ OPENID_ISSUER: 'https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration' }, 'not the .well-known'],
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

t.test('all problems are reported at once', async t => {
  const problems = problemsOf({})
  t.ok(problems.length >= 6)
  for (const name of ['OPENID_ISSUER', 'OPENID_CLIENT_ID', 'OPENID_CLIENT_SECRET', 'OPENID_SESSION_SECRET', 'DOMAIN_SERVER', 'UPSTREAM_URL']) {
    t.ok(problems.some(p => p.startsWith(name)), name)
  }
})
