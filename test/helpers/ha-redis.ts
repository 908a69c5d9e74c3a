// What every highly available Redis setup must do for the gateway, written once and run by the
// Sentinel and the Cluster tests against their real servers: the store suite, sign-in shared by
// two gateways, one refresh under concurrency, sign-out, and a failover under steady load.
import type { Test } from 'tap'
import { Browser, signIn } from './browser.js'
import { startStack, type Stack } from './stack.js'
import { editSession, sessionId } from './session.js'
import { redisLockSuite, storeSuite } from './store-suite.js'
import { RedisStore } from '../../src/session/redis-store.js'
import { loadConfig, type RedisSettings } from '../../src/config.js'
import { checkRedis, settingsFrom } from '../../src/doctor/checks.js'
import { parseSections } from '../../src/config.js'
import { DEMO_USERS } from '../../dev/idp.js'

export interface HaRedis {
  /** The gateway's settings for this setup (SESSION_STORE, REDIS_* and the ACL user). */
  env: Record<string, string>
  /** Resolves once every replica has every write its master has (compared replication offsets). */
  replicated: () => Promise<void>
  /** Stops, as a crash would, the master holding `key` (it has a replica); resolves to its port. */
  stopMasterOf: (key: string) => Promise<number>
  /** Resolves once a replica has taken over from the stopped master and the setup is whole again. */
  failedOver: (oldPort: number) => Promise<void>
}

const json = { accept: 'application/json' }

export function redisSettings (env: Record<string, string>): RedisSettings {
  const config = loadConfig({
    OPENID_ISSUER: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
    OPENID_CLIENT_ID: '00000000-0000-0000-0000-000000000001',
    OPENID_CLIENT_SECRET: 'x'.repeat(32),
    OPENID_SESSION_SECRET: 'y'.repeat(32),
    DOMAIN_SERVER: 'http://127.0.0.1:1',
    UPSTREAM_URL: 'http://127.0.0.1:2',
    ...env
  })
  if (config.redis === undefined) throw new Error('no Redis settings')
  return config.redis
}

export async function storeSuiteOn (t: Test, env: Record<string, string>): Promise<void> {
  const settings = redisSettings(env)
  const store = new RedisStore({ redis: settings })
  t.teardown(() => store.close())
  await storeSuite(t, store)
  const other = new RedisStore({ redis: settings })
  t.teardown(() => other.close())
  await redisLockSuite(t, store, other)
}

/** The doctor reaches the setup with these settings, and names what is wrong with bad ones. */
export async function doctorOn (t: Test, env: Record<string, string>, wrong: Record<string, string>, expected: RegExp): Promise<void> {
  const good = await checkRedis(settingsFrom(parseSections({ SESSION_STORE: 'redis', ...env })), { timeoutMs: 1000 })
  t.same(good.map(f => f.level), ['OK'], 'the doctor: one OK, every listed node answers')
  t.match(good[0]?.what, /answers PING/)
  const bad = await checkRedis(settingsFrom(parseSections({ SESSION_STORE: 'redis', ...env, ...wrong })), { timeoutMs: 1000 })
  t.ok(bad.some(f => f.level === 'ERROR' && expected.test(`${f.what} — ${f.fix}`)), `the doctor names the wrong setting: ${bad.map(f => `${f.level} ${f.what} — ${f.fix}`).join(' | ')}`)
  for (const f of bad) t.notMatch(`${f.what} ${f.fix}`, /password-0123456789/, 'no password printed')
}

async function headers (stack: Stack, cookie: string): Promise<Response> {
  return await fetch(`${stack.url}/headers`, { headers: { ...json, cookie }, signal: AbortSignal.timeout(20_000) })
}

/** Sign-in on one gateway, seen by another; 40 concurrent requests at expiry refresh once; sign-out shared. */
export async function sharedSessions (t: Test, env: Record<string, string>): Promise<void> {
  const gwEnv = { ...env, FORWARD_ACCESS_TOKEN: 'true' }
  const a = await startStack({ env: gwEnv })
  t.teardown(() => a.close())
  const b = await startStack({ env: gwEnv, idp: a.idp, upstream: a.upstream })
  t.teardown(() => b.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${a.url}/hello`, 'alice', 'alice')
  t.equal(response.status, 200, 'signed in')
  const cookie = `${a.config.cookieName}=${browser.cookie(a.url, a.config.cookieName) ?? ''}`
  const seen = await headers(b, cookie)
  t.equal(seen.status, 200, 'the other gateway knows the session')
  const old = (await seen.json() as { headers: Record<string, string> }).headers['x-forwarded-access-token']

  await editSession(a.store, browser, a.url, a.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 10 })
  const refreshes = a.idp.tokenRequests.refresh_token
  const answers = await Promise.all(Array.from({ length: 40 }, async (_, i) => await headers(i % 2 === 0 ? a : b, cookie)))
  t.same(answers.map(r => r.status), Array(40).fill(200), 'all 40 served')
  t.equal(a.idp.tokenRequests.refresh_token - refreshes, 1, 'one refresh across both gateways (the lock held in Redis)')
  const after = (await (await headers(b, cookie)).json() as { headers: Record<string, string> }).headers['x-forwarded-access-token']
  t.not(after, old, 'both forward the new token')

  const out = await fetch(`${a.url}/oauth2/sign_out`, { method: 'POST', headers: { cookie, origin: a.url }, redirect: 'manual' })
  t.equal(out.status, 303, 'signed out on one gateway (sent on to the signed-out page)')
  t.equal((await headers(b, cookie)).status, 401, 'and the other no longer knows the session')
  t.equal((await headers(a, cookie)).status, 401)
}

/**
 * Three sessions signed in and replicated, steady authenticated load, the master holding the first
 * user's session stopped: every request is answered (200, or 503 session_store_unavailable while
 * no master serves), and after the failover every session is still there.
 */
export async function failoverUnderLoad (t: Test, env: Record<string, string>, ha: HaRedis): Promise<void> {
  const stack = await startStack({ env })
  t.teardown(() => stack.close())
  // Three sessions (alice twice, in two browsers).
  const users = [DEMO_USERS[0], DEMO_USERS[1], DEMO_USERS[0]].filter(u => u !== undefined)
  const cookies: string[] = []
  const ids: string[] = []
  for (const u of users) {
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, u.username, u.password)
    ids.push(sessionId(browser, stack.url, stack.config.cookieName))
    cookies.push(`${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`)
    t.equal((await headers(stack, cookies[cookies.length - 1] ?? '')).status, 200, `${u.username} signed in`)
  }
  await ha.replicated()

  const results: Array<{ status: number | string, error?: string, after: boolean }> = []
  let failedOver = false
  // One client per user, each request after the last (paced, so fail-fast 503s do not spin).
  const clients = cookies.map(async cookie => {
    let okAfter = 0
    for (let i = 0; i < 3000; i++) {
      const r = await headers(stack, cookie).then(
        async res => ({ status: res.status, error: res.status === 200 ? undefined : (await res.json() as { error: string }).error }),
        (err: Error) => ({ status: err.name })
      )
      results.push({ ...r, after: failedOver })
      okAfter = failedOver && r.status === 200 ? okAfter + 1 : 0
      if (okAfter >= 10) return
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  })
  // Load is flowing before the master goes.
  while (results.length < 6) await new Promise(resolve => setTimeout(resolve, 10))
  const old = await ha.stopMasterOf(`entra-gw:sess:${ids[0] ?? ''}`)
  await ha.failedOver(old)
  failedOver = true
  await Promise.all(clients)

  const statuses = new Map<string, number>()
  for (const r of results) statuses.set(String(r.status), (statuses.get(String(r.status)) ?? 0) + 1)
  t.comment(`answers during the failover: ${JSON.stringify(Object.fromEntries(statuses))}`)
  t.same([...statuses.keys()].filter(s => s !== '200' && s !== '503'), [], 'every request answered, 200 or 503 (no 500, no hang)')
  t.same([...new Set(results.filter(r => r.status === 503).map(r => r.error))].filter(e => e !== 'session_store_unavailable'), [], 'a 503 says the session store is unavailable')
  for (const [i, cookie] of cookies.entries()) {
    const res = await headers(stack, cookie)
    t.equal(res.status, 200, `${users[i]?.username ?? ''}'s session survived the failover`)
    t.ok((await res.json() as { headers: Record<string, string> }).headers['x-forwarded-user'])
  }
  t.ok(stack.logs.some(l => l.event === 'session_store_up') || !stack.logs.some(l => l.event === 'session_store_down'), 'an outage, if the gateway saw one, ended')
}
