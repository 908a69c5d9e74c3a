// Graph-ready tokens: Graph scopes at sign-in, forwarding, refresh exactly once (in one
// process and across two on one Redis), invalid_grant, an IdP outage, the token endpoint,
// tokens sealed at rest, secret rotation, and the signed identity.
import t, { type Test } from 'tap'
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose'
import { Redis } from 'ioredis'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis.js'
import { editSession, sessionId } from '../helpers/session.js'
import { MemoryStore } from '../../src/session/memory-store.js'
import { RedisStore } from '../../src/session/redis-store.js'
import { DEMO_USERS } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const GRAPH_SCOPES = 'User.Read,People.Read,GroupMember.Read.All,User.ReadBasic.All'
const json = { accept: 'application/json' }

async function forwarded (browser: Browser, stack: Stack): Promise<Record<string, string>> {
  const res = await browser.request(`${stack.url}/headers`, { headers: json })
  if (res.status !== 200) throw new Error(`proxied request answered ${res.status}`)
  return (await res.json() as { headers: Record<string, string> }).headers
}

t.test('Graph scopes at sign-in; a Graph token forwarded, valid, with its expiry', async t => {
  const stack = await startStack({ graph: { users: [{ id: alice.oid, displayName: alice.name, mail: alice.email, userPrincipalName: alice.preferredUsername }] }, env: { OPENID_GRAPH_SCOPES: GRAPH_SCOPES } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const first = await browser.request(`${stack.url}/`)
  const scope = new URL(first.headers.get('location') ?? '').searchParams.get('scope') ?? ''
  const graphUrl = stack.graph?.url ?? ''
  t.same(scope.split(' '), ['openid', 'profile', 'email', 'offline_access', ...GRAPH_SCOPES.split(',').map(s => `${graphUrl}/${s}`)])
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const h = await forwarded(browser, stack)
  const token = h['x-forwarded-access-token'] ?? ''
  t.equal(decodeJwt(token).aud, graphUrl, 'a token for Graph')
  t.ok(Number(h['x-forwarded-access-token-expires-on']) > Date.now() / 1000 + 300)
  t.equal(h.authorization, undefined, 'Authorization is not set upstream unless asked')
  const me = await fetch(`${graphUrl}/v1.0/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200, 'the upstream can call Graph with it')
  t.equal((await me.json() as { id: string }).id, alice.oid)
})

t.test('50 concurrent requests at expiry cause one refresh; the forwarded token is never expired', async t => {
  const stack = await startStack({ graph: {}, env: { OPENID_GRAPH_SCOPES: 'User.Read' } })
  t.teardown(() => stack.close())
  const store = stack.store
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const before = await forwarded(browser, stack)
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 10 })
  const refreshes = stack.idp.tokenRequests.refresh_token
  const all = await Promise.all(Array.from({ length: 50 }, async () => await forwarded(browser, stack)))
  t.equal(stack.idp.tokenRequests.refresh_token - refreshes, 1, 'exactly one refresh')
  const tokens = new Set(all.map(h => h['x-forwarded-access-token']))
  t.equal(tokens.size, 1, 'every request forwarded the same, new token')
  t.not([...tokens][0], before['x-forwarded-access-token'])
  for (const h of all) t.ok(Number(h['x-forwarded-access-token-expires-on']) > Date.now() / 1000 + 300)
  t.ok(stack.logs.some(l => l.event === 'token_refresh'))
})

t.test('two gateways on one Redis refresh a shared session once', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { SESSION_STORE: 'redis', REDIS_URL: redis.url, OPENID_GRAPH_SCOPES: 'User.Read' }
  const a = await startStack({ graph: {}, env })
  t.teardown(() => a.close())
  const bStore = new RedisStore({ url: redis.url })
  t.teardown(() => bStore.close())
  const b = await startStack({ env: { ...env, GRAPH_API_URL: a.graph?.url ?? '' }, idp: a.idp, upstream: a.upstream, store: bStore })
  t.teardown(() => b.close())
  const browser = new Browser()
  await signIn(browser, `${a.url}/`, 'alice', 'alice')
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`
  const sid = decodeURIComponent(browser.cookie(a.url, a.config.cookieName) ?? '').split('.')[0] ?? ''
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const hit = async (url: string): Promise<string> => {
    const res = await fetch(`${url}/headers`, { headers: { ...json, cookie } })
    t.equal(res.status, 200)
    return (await res.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token'] ?? ''
  }
  const old = await hit(b.url)
  const key = `entra-gw:sess:${sid}`
  const stored = JSON.parse(await client.get(key) ?? '{}') as Record<string, any>
  stored.data.accessExp = Math.floor(Date.now() / 1000) + 10
  await client.set(key, JSON.stringify(stored), 'PX', 3_600_000)
  const refreshes = a.idp.tokenRequests.refresh_token
  const tokens = await Promise.all(Array.from({ length: 40 }, async (_, i) => await hit(i % 2 === 0 ? a.url : b.url)))
  t.equal(a.idp.tokenRequests.refresh_token - refreshes, 1, 'one refresh across both replicas')
  // While one replica refreshes, the other serves the old token, still valid, without waiting.
  const renewed = new Set(tokens.filter(x => x !== old))
  t.equal(renewed.size, 1, 'one new token')
  t.equal(await hit(b.url), [...renewed][0], 'afterwards both replicas forward the new one')
  t.equal(await hit(a.url), [...renewed][0])
})

/** Alice signed in on a gateway with a Redis store; her stored session and refresh lock, at hand. */
async function onRedis (t: Test, redisUrl: string, env: Record<string, string> = {}, opts: { idp?: Stack['idp'], upstream?: Stack['upstream'] } = {}): Promise<Stack> {
  const stack = await startStack({ env: { SESSION_STORE: 'redis', REDIS_URL: redisUrl, REFRESH_LOCK_SECONDS: '1', FORWARD_ACCESS_TOKEN: 'true', ...env }, ...opts })
  t.teardown(() => stack.close())
  return stack
}

t.test('a refresh lock left by a crashed replica: a valid token is served at once, an expired one waits', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await onRedis(t, redis.url)
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const sid = sessionId(browser, stack.url, stack.config.cookieName)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const lockKey = `entra-gw:lock:refresh:${sid}`
  const expiresIn = async (seconds: number): Promise<void> => await editSession(stack.store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + seconds })
  const call = async (): Promise<Response> => await browser.request(`${stack.url}/headers`, { headers: json })
  const old = (await forwarded(browser, stack))['x-forwarded-access-token']
  const refreshes = (): number => stack.idp.tokenRequests.refresh_token
  const before = refreshes()

  // Due for refresh (within the skew) but valid; the replica that took the lock is gone.
  await client.set(lockKey, 'crashed-replica', 'PX', 3_600_000)
  await expiresIn(60)
  for (let i = 0; i < 3; i++) {
    const res = await call()
    t.equal(res.status, 200, 'answered with the still-valid token')
    t.equal((await res.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token'], old)
  }
  t.equal(refreshes(), before, 'the IdP saw no refresh')
  t.equal(await client.get(lockKey), 'crashed-replica', 'the lock was not taken over')
  // Once the lock is gone, the next request refreshes.
  await client.del(lockKey)
  t.not((await forwarded(browser, stack))['x-forwarded-access-token'], old, 'refreshed on a later request')
  t.equal(refreshes(), before + 1)

  // Expired: worth waiting for the lock; held all that time, a 503 that says why.
  await client.set(lockKey, 'crashed-replica', 'PX', 3_600_000)
  await expiresIn(-1)
  const busy = await call()
  t.equal(busy.status, 503)
  t.match(await busy.json(), { error: 'renewal_in_progress' })
  t.equal(refreshes(), before + 1, 'no refresh while the lock is held')
  t.ok(stack.logs.some(l => l.event === 'refresh_failed' && l.reason === 'lock_busy' && l.stillValid === false))
  // A crashed replica's lock lapses after its TTL: the waiting request then refreshes.
  await client.set(lockKey, 'crashed-replica', 'PX', 1000)
  const after = await call()
  t.equal(after.status, 200, 'served once the lock lapsed')
  t.equal(refreshes(), before + 2)
  t.not(await client.get(lockKey), 'crashed-replica')
})

t.test('a slow refresh keeps its lock past the TTL: the other replica does not refresh meanwhile', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await onRedis(t, redis.url)
  const b = await onRedis(t, redis.url, {}, { idp: a.idp, upstream: a.upstream })
  const browser = new Browser()
  await signIn(browser, `${a.url}/`, 'alice', 'alice')
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`
  const sid = sessionId(browser, a.url, a.config.cookieName)
  const via = async (stack: Stack): Promise<Response> => await fetch(`${stack.url}/headers`, { headers: { ...json, cookie } })
  const old = (await (await via(b)).json() as { headers: Record<string, string> }).headers['x-forwarded-access-token']

  // Watch the lock key: SET (+ its expire), each extension (expire), a lapse (expired), release (del).
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  await client.config('SET', 'notify-keyspace-events', 'Kg$x')
  const sub = new Redis(redis.url)
  t.teardown(() => sub.disconnect())
  const events: string[] = []
  let onEvent = (): void => {}
  sub.on('message', (_channel: string, event: string) => { events.push(event); onEvent() })
  await sub.subscribe(`__keyspace@0__:entra-gw:lock:refresh:${sid}`)
  const until = async (done: () => boolean): Promise<void> => await new Promise<void>(resolve => {
    onEvent = () => { if (done()) resolve() }
    onEvent()
  })

  await editSession(a.store, browser, a.url, a.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 60 })
  const refreshes = a.idp.tokenRequests.refresh_token
  const hold = a.idp.holdTokenRequests('refresh_token')
  const first = via(a)
  await hold.arrivals(1)
  // Four extensions at a third of the 1 s TTL each: the lock has lived past its TTL.
  await until(() => events.filter(e => e === 'expire').length >= 5 || events.includes('expired') || events.includes('del'))
  t.same(events.filter(e => e === 'expired' || e === 'del'), [], 'the lock never lapsed (nor was given up) while the refresh ran')
  const second = await Promise.race([via(b), hold.arrivals(2).then(() => 'a second refresh reached the IdP')])
  t.equal(typeof second === 'string' ? second : second.status, 200, 'the other replica served at once, without refreshing')
  hold.release()
  const res = await first
  t.equal(res.status, 200)
  const renewed = (await res.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token']
  t.not(renewed, old)
  t.equal(a.idp.tokenRequests.refresh_token - refreshes, 1, 'the IdP saw exactly one refresh grant')
  await until(() => events.includes('del'))
  t.pass('released when done')
  t.equal((await (await via(b)).json() as { headers: Record<string, string> }).headers['x-forwarded-access-token'], renewed, 'the other replica forwards the new token')
})

t.test('invalid_grant ends the session: 401 for API calls, a fresh sign-in for navigations', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const store = stack.store as MemoryStore
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  stack.idp.revokeRefreshTokens('alice')
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 1 })
  const api = await browser.request(`${stack.url}/api/x`, { headers: json })
  t.equal(api.status, 401)
  t.equal((await api.json() as Record<string, string>).error, 'session_expired')
  t.equal(store.size, 0, 'the session is gone from the store')
  const nav = await browser.request(`${stack.url}/c/1`)
  t.equal(nav.status, 302)
  t.ok((nav.headers.get('location') ?? '').startsWith(stack.idp.origin))
  t.ok(stack.logs.some(l => l.event === 'session_end' && l.reason === 'invalid_grant'))
})

t.test('IdP down at refresh: keeps serving while the token is valid, refuses once it is not', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const store = stack.store
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  stack.idp.setDown(true)
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 60 })
  t.equal((await browser.request(`${stack.url}/api/x`, { headers: json })).status, 200, 'still valid: served')
  t.ok(stack.logs.some(l => l.event === 'refresh_failed' && l.stillValid === true))
  const s2 = await startStack()
  t.teardown(() => s2.close())
  const b2 = new Browser()
  await signIn(b2, `${s2.url}/`, 'alice', 'alice')
  s2.idp.setDown(true)
  await editSession(s2.store, b2, s2.url, s2.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 1 })
  const res = await b2.request(`${s2.url}/api/x`, { headers: json })
  t.equal(res.status, 503, 'expired and not renewable: refused, never an expired token forwarded')
})

t.test('the token endpoint: allow-list, same-origin scripts only, no-store, per-resource tokens cached', async t => {
  const sharePoint = 'https://contoso.sharepoint.com/AllSites.Read'
  const stack = await startStack({ graph: {}, env: { OPENID_GRAPH_SCOPES: 'User.Read', SHAREPOINT_PICKER_SHAREPOINT_SCOPE: sharePoint, SHAREPOINT_PICKER_GRAPH_SCOPE: 'Files.Read.All', ENABLE_SHAREPOINT_FILEPICKER: 'true', SHAREPOINT_BASE_URL: 'https://contoso.sharepoint.com' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const xhr = { ...json, 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' }
  const get = async (scope: string, headers: Record<string, string> = xhr): Promise<Response> => await browser.request(`${stack.url}/oauth2/token?scope=${encodeURIComponent(scope)}`, { headers })

  const sp = await get(sharePoint)
  t.equal(sp.status, 200)
  t.equal(sp.headers.get('cache-control'), 'no-store')
  const body = await sp.json() as { access_token: string, token_type: string, expires_in: number, scope: string }
  t.equal(decodeJwt(body.access_token).aud, 'https://contoso.sharepoint.com', 'a SharePoint-scoped token')
  t.equal(body.token_type, 'Bearer')
  t.ok(body.expires_in > 120)
  const refreshes = stack.idp.tokenRequests.refresh_token
  t.equal((await (await get(sharePoint)).json() as { access_token: string }).access_token, body.access_token, 'cached until near expiry')
  t.equal(stack.idp.tokenRequests.refresh_token, refreshes)

  const graphFiles = await get(`${stack.graph?.url ?? ''}/Files.Read.All`)
  t.equal(graphFiles.status, 200)

  const refused = await get('https://evil.example/All offline_access')
  t.equal(refused.status, 400)
  t.same((await refused.json() as { refused: string[] }).refused, ['https://evil.example/All', 'offline_access'])
  t.equal((await get(`${sharePoint} ${stack.graph?.url ?? ''}/User.Read`)).status, 400, 'one resource at a time')
  t.equal((await get(sharePoint, json)).status, 403, 'without X-Requested-With')
  t.equal((await get(sharePoint, { ...xhr, 'sec-fetch-site': 'cross-site' })).status, 403, 'from another site')
  t.equal((await get(sharePoint, { ...json, 'x-requested-with': 'XMLHttpRequest', origin: 'https://evil.example' })).status, 403)
  t.equal((await fetch(`${stack.url}/oauth2/token?scope=${encodeURIComponent(sharePoint)}`, { headers: xhr })).status, 401, 'no session')

  const cfg = await (await fetch(`${stack.url}/oauth2/config`)).json() as Record<string, any>
  t.equal(cfg.sharepoint.enabled, true)
  t.equal(cfg.sharepoint.base_url, 'https://contoso.sharepoint.com')
  t.notMatch(JSON.stringify(cfg), /secret/i)
})

t.test('a Redis dump holds no token; secret rotation keeps sessions', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { SESSION_STORE: 'redis', REDIS_URL: redis.url, OPENID_GRAPH_SCOPES: 'User.Read', OPENID_SESSION_SECRET: 'first-secret-0123456789-0123456789-abcdef' }
  const a = await startStack({ graph: {}, env })
  t.teardown(() => a.close())
  const browser = new Browser()
  await signIn(browser, `${a.url}/`, 'alice', 'alice')
  const token = (await forwarded(browser, a))['x-forwarded-access-token'] ?? ''
  t.ok(token.length > 100)

  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  let dump = ''
  // Every key, whatever its type: sessions and tokens are strings, the logout links sorted sets.
  for (const key of await client.keys('*')) {
    const type = await client.type(key)
    const value = type === 'string' ? await client.get(key) ?? '' : type === 'zset' ? (await client.zrange(key, '0', '-1')).join(' ') : `(${type})`
    dump += `${key} ${value}\n`
  }
  t.ok(dump.length > 0)
  t.notOk(dump.includes(token), 'the access token is not in Redis')
  t.notOk(/eyJ[\w-]+\.eyJ/.test(dump), 'no JWT at all in Redis')

  // Rotation: a new secret, the old one in OPENID_SESSION_SECRET_PREVIOUS: the same cookie still works.
  const rotated = await startStack({ env: { ...env, GRAPH_API_URL: a.graph?.url ?? '', OPENID_SESSION_SECRET: 'second-secret-0123456789-0123456789-abcdef', OPENID_SESSION_SECRET_PREVIOUS: env.OPENID_SESSION_SECRET }, idp: a.idp, upstream: a.upstream })
  t.teardown(() => rotated.close())
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`
  const res = await fetch(`${rotated.url}/headers`, { headers: { ...json, cookie } })
  t.equal(res.status, 200, 'signed in still')
  t.equal((await res.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token'], token, 'tokens sealed under the old secret still open')
})

t.test('X-Forwarded-Identity verifies against /oauth2/jwks.json and fails when tampered with', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const h1 = await forwarded(browser, stack)
  const h2 = await forwarded(browser, stack)
  const jwt = h1['x-forwarded-identity'] ?? ''
  t.equal(h2['x-forwarded-identity'], jwt, 'not signed anew on every request')
  const jwks = createRemoteJWKSet(new URL(`${stack.url}/oauth2/jwks.json`))
  const { payload, protectedHeader } = await jwtVerify(jwt, jwks, { issuer: stack.url, audience: stack.upstream.url })
  t.equal(protectedHeader.alg, 'ES256')
  t.equal(payload.oid, alice.oid)
  t.equal(payload.name, alice.name)
  t.same(payload.roles, alice.roles)
  t.same(payload.groups, alice.groups)
  t.ok((payload.exp ?? 0) - (payload.iat ?? 0) <= 300)
  const [head, body, sig] = jwt.split('.') as [string, string, string]
  const forged = Buffer.from(JSON.stringify({ ...payload, roles: ['Admin'] })).toString('base64url')
  await t.rejects(jwtVerify(`${head}.${forged}.${sig}`, jwks), 'a tampered identity fails')
  t.ok(body.length > 0)
})
