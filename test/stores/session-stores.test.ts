// One suite, run against every session store: both must behave the same (test/helpers/store-suite.ts;
// the Sentinel and Cluster tests run it too).
import t from 'tap'
import { MemoryStore } from '../../src/session/memory-store.js'
import { RedisStore } from '../../src/session/redis-store.js'
import { startRedis } from '../helpers/redis.js'
import { redisLockSuite, sessionWith, storeSuite } from '../helpers/store-suite.js'

t.test('memory store', async t => {
  const store = new MemoryStore({ maxSessions: 3 })
  t.teardown(() => store.close())
  await storeSuite(t, store)
  for (const id of ['1', '2', '3', '4']) await store.set(id, sessionWith({ id }, 60_000))
  t.equal(store.size, 3, 'bounded: the oldest is evicted')
  t.equal(await store.get('1'), undefined)
  await store.link('sid:m', 'x', Date.now() + 1)
  await store.set('x', sessionWith({}, 1))
  const until = Date.now() + 2
  while (Date.now() <= until) await new Promise(resolve => setImmediate(resolve))
  store.sweep()
  t.equal(store.size, 2, 'sweep drops expired entries')
  await store.link('sid:m2', 'y', Date.now() + 60_000)
  t.same(await store.takeLinked('sid:m'), [], 'and expired links')
})

t.test('redis store (real redis-server)', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  await storeSuite(t, store)
  const other = new RedisStore({ url: redis.url })
  t.teardown(() => other.close())
  await redisLockSuite(t, store, other)
  const ttl = await store.client.pttl('entra-gw:sess:none')
  t.equal(ttl, -2)
  await store.set('ttl', sessionWith({}, 5000))
  const pttl = await store.client.pttl('entra-gw:sess:ttl')
  t.ok(pttl > 0 && pttl <= 5000, 'Redis expires the entry with the cookie')
  await store.link('sid:ttl', 'a', Date.now() + 5000)
  await store.link('sid:ttl', 'b', Date.now() + 3000)
  const linkTtl = await store.client.pttl('entra-gw:link:sid:ttl')
  t.ok(linkTtl > 3000 && linkTtl <= 5000, 'a link key expires with its longest-lived session')
  const onceTtl = await store.client.pttl('entra-gw:once:jti:1')
  t.ok(onceTtl > 0 && onceTtl <= 60_000, 'a replay key expires')

  // A client that ioredis has ended on its own (as it does after some failed reconnects through
  // Sentinel) is started again: the store comes back without a restart of the gateway.
  store.client.disconnect()
  await t.rejects(store.get('ttl'), { name: 'StoreUnavailableError' }, 'an ended client: 503 at once')
  let back = false
  for (let i = 0; i < 100 && !back; i++) {
    back = await store.ping().then(() => true, () => false)
    if (!back) await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.ok(back, 'the store reconnects by itself')
  t.ok(await store.get('ttl'), 'and serves again')

  await redis.stop()
  await t.rejects(store.ping(), 'ping fails when Redis is down')
})
