// LibreChat's OpenID settings with LibreChat's meanings, over real HTTP against the local IdP:
// the session secret (commas and all, rotation with OPENID_SESSION_SECRET_PREVIOUS, short ones
// warned about or refused), the client authentication at the token endpoint, OPENID_AUDIENCE,
// OPENID_CLOCK_TOLERANCE, the claims that fill the identity headers, and the lines said at
// start about settings that are always on or not used.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Browser, signIn } from '../helpers/browser.js'
import { CLIENT_ID, startStack, type Stack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { MemoryStore } from '../../src/session/memory-store.js'
import { DEMO_USERS, type IdpUser } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const json = { accept: 'application/json' }

/** The headers the upstream received for this browser's session at `stack`, or the status. */
async function upstreamHeaders (stack: Stack, cookie: string): Promise<Record<string, string> | number> {
  const res = await fetch(`${stack.url}/headers`, { headers: { ...json, cookie } })
  if (res.status !== 200) return res.status
  return (await res.json() as { headers: Record<string, string> }).headers
}

const notices = (stack: Stack): Array<Record<string, unknown>> => stack.logs.filter(l => l.event === 'config_notice')

t.test('OPENID_SESSION_SECRET with a comma is one secret, not a rotation list', async t => {
  const partOne = 'part-one-0123456789-abcdefghijklmnop'
  const secret = `${partOne},part-two-0123456789-abcdefghijklmnop`
  const store = new MemoryStore({ maxSessions: 100 })
  const a = await startStack({ store, env: { OPENID_SESSION_SECRET: secret } })
  t.teardown(() => a.close())
  const browser = new Browser()
  await signIn(browser, `${a.url}/`, 'alice', 'alice')
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`
  const seen = await upstreamHeaders(a, cookie)
  t.equal(typeof seen === 'object' ? seen['x-forwarded-user'] : seen, alice.oid, 'signed in with the whole value as the secret')

  const warned = notices(a).filter(l => l.variable === 'OPENID_SESSION_SECRET')
  t.equal(warned.length, 1, 'one line at start')
  t.equal(warned[0]?.level, 40, 'a warning')
  t.match(warned[0]?.msg, /contains a comma and is used whole/)
  t.notMatch(a.rawLogs(), partOne, 'the secret is never logged')

  // Were the value split at the comma, its first part would have signed the cookie.
  const firstPartOnly = await startStack({ store, idp: a.idp, upstream: a.upstream, env: { OPENID_SESSION_SECRET: partOne } })
  t.teardown(() => firstPartOnly.close())
  t.equal(await upstreamHeaders(firstPartOnly, cookie), 401, 'a gateway holding only the part before the comma cannot read the session')
  const whole = await startStack({ store, idp: a.idp, upstream: a.upstream, env: { OPENID_SESSION_SECRET: secret } })
  t.teardown(() => whole.close())
  const again = await upstreamHeaders(whole, cookie)
  t.equal(typeof again === 'object' ? again['x-forwarded-user'] : again, alice.oid, 'one holding the whole value can')
})

t.test('rotation: the old secret in OPENID_SESSION_SECRET_PREVIOUS keeps a signed-in user signed in', async t => {
  const old = 'old-secret-0123456789-abcdefghijklmnop'
  const store = new MemoryStore({ maxSessions: 100 })
  const a = await startStack({ store, env: { OPENID_SESSION_SECRET: old } })
  t.teardown(() => a.close())
  const browser = new Browser()
  await signIn(browser, `${a.url}/`, 'alice', 'alice')
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`

  const withoutOld = await startStack({ store, idp: a.idp, upstream: a.upstream, env: { OPENID_SESSION_SECRET: 'new-secret-0123456789-abcdefghijklmnop' } })
  t.teardown(() => withoutOld.close())
  t.equal(await upstreamHeaders(withoutOld, cookie), 401, 'a new secret alone signs everyone out')

  const rotated = await startStack({ store, idp: a.idp, upstream: a.upstream, env: { OPENID_SESSION_SECRET: 'new-secret-0123456789-abcdefghijklmnop', OPENID_SESSION_SECRET_PREVIOUS: `another-old-secret-0123456789-abcdefg,${old}` } })
  t.teardown(() => rotated.close())
  const seen = await upstreamHeaders(rotated, cookie)
  t.equal(typeof seen === 'object' ? seen['x-forwarded-user'] : seen, alice.oid, 'with the old secret in _PREVIOUS: still signed in')

  // The refresh token was sealed under the old secret: a refresh (the access token is made to
  // look expired) must open it.
  const refreshesBefore = a.idp.tokenRequests.refresh_token
  await editSession(store, browser, a.url, a.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 10 })
  const afterRefresh = await upstreamHeaders(rotated, cookie)
  t.equal(typeof afterRefresh === 'object' ? afterRefresh['x-forwarded-user'] : afterRefresh, alice.oid, 'still signed in after a refresh')
  t.equal(a.idp.tokenRequests.refresh_token, refreshesBefore + 1, 'the refresh token sealed under the old secret opened and was used')
  t.notOk(rotated.logs.some(l => l.event === 'session_end'), 'the session did not end')
})

t.test('the start refuses a secret under 16 characters, in one line, and warns under 32', async t => {
  const run = async (env: Record<string, string>): Promise<{ code: number | null, stderr: string }> => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: process.cwd() })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const [code] = await once(child, 'close') as [number | null]
    return { code, stderr }
  }
  const complete = {
    OPENID_ISSUER: 'https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0/',
    OPENID_CLIENT_ID: CLIENT_ID,
    OPENID_CLIENT_SECRET: 'a-client-secret-value',
    DOMAIN_SERVER: 'http://localhost:3080',
    UPSTREAM_URL: 'http://127.0.0.1:9',
    PORT: 'x' // stops the start after the configuration is read, whatever the secret
  }
  const short = await run({ ...complete, OPENID_SESSION_SECRET: 'fifteen-chars!!' })
  t.equal(short.code, 2)
  const secretLines = short.stderr.split('\n').filter(l => l.includes('OPENID_SESSION_SECRET'))
  t.same(secretLines, ['entra-gateway: configuration error: OPENID_SESSION_SECRET is too short: OPENID_SESSION_SECRET must be at least 16 characters (32 or more recommended); generate one with `openssl rand -hex 32`.'], 'one line naming the variable and the fix')
  t.notMatch(short.stderr, 'fifteen-chars', 'without the secret')

  const stack = await startStack({ env: { OPENID_SESSION_SECRET: 'twenty-characters-!!' } })
  t.teardown(() => stack.close())
  const lines = notices(stack)
  t.same(lines.map(l => [l.variable, l.level]), [['OPENID_SESSION_SECRET', 40]], 'one warning line at start')
  t.match(lines[0]?.msg, /^OPENID_SESSION_SECRET is shorter than 32 characters: accepted/)
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal((await browser.request(`${stack.url}/headers`, { headers: json })).status, 200, 'and it works')
})

t.test('OPENID_TOKEN_ENDPOINT_AUTH_METHOD: client_secret_post and client_secret_basic, end to end', async t => {
  for (const method of [undefined, 'client_secret_post', 'client_secret_basic'] as const) {
    const stack = await startStack({ env: { OPENID_TOKEN_ENDPOINT_AUTH_METHOD: method } })
    t.teardown(() => stack.close())
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, 'alice', 'alice')
    // A refresh too: every token request authenticates the same way.
    await editSession(stack.store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 10 })
    t.equal((await browser.request(`${stack.url}/headers`, { headers: json })).status, 200, `${method ?? 'unset'}: signed in and refreshed`)
    const used = method ?? 'client_secret_post'
    t.same(stack.idp.tokenAuthMethods, { [used]: 2 }, `${method ?? 'unset (LibreChat\'s default too)'}: the code and the refresh, both with ${used}`)
  }
})

t.test('OPENID_AUDIENCE goes into the authorization request; PKCE and the nonce stay on when told otherwise', async t => {
  const stack = await startStack({ env: { OPENID_AUDIENCE: 'api://librechat', OPENID_USE_PKCE: 'false', OPENID_GENERATE_NONCE: 'false' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const first = await browser.request(`${stack.url}/`)
  const to = new URL(first.headers.get('location') ?? '')
  t.equal(to.searchParams.get('audience'), 'api://librechat', 'as LibreChat sends it')
  t.equal(to.searchParams.get('code_challenge_method'), 'S256', 'PKCE regardless')
  t.ok(to.searchParams.get('nonce'), 'a nonce regardless')
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal((await browser.request(`${stack.url}/headers`, { headers: json })).status, 200, 'the sign-in completes')
  t.same(notices(stack).map(l => [l.variable, l.level]), [['OPENID_USE_PKCE', 30], ['OPENID_GENERATE_NONCE', 30]], 'one info line each')
  t.match(notices(stack)[0]?.msg, 'always sends PKCE')

  const plain = await startStack({ idp: stack.idp, upstream: stack.upstream })
  t.teardown(() => plain.close())
  const none = new URL((await new Browser().request(`${plain.url}/`)).headers.get('location') ?? '')
  t.equal(none.searchParams.get('audience'), null, 'no audience unless set')
})

t.test("OPENID_CLOCK_TOLERANCE: seconds of skew accepted in the IdP's tokens", async t => {
  const now = Math.floor(Date.now() / 1000)
  // A bearer token that expired 100 s ago (a client whose clock runs behind the gateway's).
  for (const [tolerance, status] of [['300', 200], ['30', 401]] as const) {
    const stack = await startStack({ env: { BEARER_AUTH: 'true', OPENID_CLOCK_TOLERANCE: tolerance } })
    t.teardown(() => stack.close())
    const token = await stack.idp.signJwt({ iss: stack.idp.issuer, aud: CLIENT_ID, sub: 's', oid: alice.oid, tid: stack.idp.tenantId, roles: ['ChatUser'], iat: now - 700, nbf: now - 700, exp: now - 100 })
    const res = await fetch(`${stack.url}/api/x`, { headers: { ...json, authorization: `Bearer ${token}` } })
    t.equal(res.status, status, `tolerance ${tolerance} s: ${status}`)
  }
})

t.test('OPENID_USERNAME_CLAIM, OPENID_NAME_CLAIM, OPENID_EMAIL_CLAIM fill the identity headers', async t => {
  const carol: IdpUser = {
    username: 'carol',
    password: 'carol',
    oid: '7d1c2b3a-4e5f-4a6b-8c7d-1e2f3a4b5c6d',
    name: 'Carol Example',
    preferredUsername: 'carol@contoso.example',
    email: 'carol@contoso.example',
    roles: ['ChatUser'],
    extraClaims: { employee_id: 'E-1001', display_name: 'Dr. Carol Example', upn: 'carol@contoso.onmicrosoft.com' }
  }
  const stack = await startStack({ users: [...DEMO_USERS, carol], env: { OPENID_USERNAME_CLAIM: 'employee_id', OPENID_NAME_CLAIM: 'display_name', OPENID_EMAIL_CLAIM: 'upn' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'carol', 'carol')
  const h = await (await browser.request(`${stack.url}/headers`, { headers: json })).json() as { headers: Record<string, string> }
  t.equal(h.headers['x-forwarded-preferred-username'], 'E-1001')
  t.equal(h.headers['x-forwarded-name'], 'Dr. Carol Example')
  t.equal(h.headers['x-forwarded-email'], 'carol@contoso.onmicrosoft.com')

  // Alice has none of these claims: no user name or name (as in LibreChat), the email falls back.
  const b2 = new Browser()
  await signIn(b2, `${stack.url}/`, 'alice', 'alice')
  const a = await (await b2.request(`${stack.url}/headers`, { headers: json })).json() as { headers: Record<string, string> }
  t.equal(a.headers['x-forwarded-preferred-username'], undefined)
  t.equal(a.headers['x-forwarded-name'], undefined)
  t.equal(a.headers['x-forwarded-email'], alice.email, 'email, as LibreChat falls back')
})

t.test("LibreChat's OPENID_* settings the gateway does not use: one line each at start", async t => {
  const stack = await startStack({
    env: {
      OPENID_ADMIN_ROLE: 'Admin',
      OPENID_ADMIN_ROLE_TOKEN_KIND: 'id',
      OPENID_ON_BEHALF_FLOW_USERINFO_SCOPE: 'user.read',
      OPENID_ROLE_SYNC_CLAIM: ' ',
      OPENID_REUSE_MAX_SESSION_AGE_MS: '1000 * 60 * 15'
    }
  })
  t.teardown(() => stack.close())
  const lines = notices(stack)
  t.same(lines.map(l => l.variable).sort(), ['OPENID_ADMIN_ROLE', 'OPENID_ADMIN_ROLE_TOKEN_KIND', 'OPENID_ON_BEHALF_FLOW_USERINFO_SCOPE', 'OPENID_REUSE_MAX_SESSION_AGE_MS'], 'each one set, once; an empty one is nothing')
  for (const l of lines) t.match(l.msg, /is not used/, `${String(l.variable)}: says it is not used`)
  t.match(lines.find(l => l.variable === 'OPENID_REUSE_MAX_SESSION_AGE_MS')?.msg, 'applies only with OPENID_REUSE_TOKENS=true')
})
