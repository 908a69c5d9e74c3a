// The Redis store end to end: sessions survive a gateway restart and are shared by replicas.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { startRedis } from '../helpers/redis.js'

t.test('sign-in with SESSION_STORE=redis, shared by two gateways', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { SESSION_STORE: 'redis', REDIS_URL: redis.url }
  const a = await startStack({ env })
  t.teardown(() => a.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${a.url}/hello`, 'alice', 'alice')
  t.equal(response.status, 200)

  // A second replica with the same secret and store, on another port: same cookie works.
  const b = await startStack({ env, idp: a.idp, upstream: a.upstream })
  t.teardown(() => b.close())
  const cookie = browser.cookie(a.url, a.config.cookieName) ?? ''
  const res = await fetch(`${b.url}/headers`, { headers: { accept: 'application/json', cookie: `${a.config.cookieName}=${cookie}` } })
  t.equal(res.status, 200)
  const seen = await res.json() as { headers: Record<string, string> }
  t.ok(seen.headers['x-forwarded-user'])

  const { Redis } = await import('ioredis')
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const keys = await client.keys('entra-gw:sess:*')
  t.equal(keys.length, 1, 'one session in Redis')
  t.ok((await client.pttl(keys[0] ?? '')) > 0, 'with a TTL')
})
