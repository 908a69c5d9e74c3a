// One suite, run against every session store: both must behave the same.
import t, { type Test } from 'tap'
import { MemoryStore } from '../../src/session/memory-store.js'
import { RedisStore } from '../../src/session/redis-store.js'
import type { GatewayStore, StoredSession } from '../../src/session/store.js'
import { startRedis } from '../helpers/redis.js'

const sessionWith = (data: Record<string, unknown>, expiresInMs: number): StoredSession =>
  ({ data, expiresAt: Date.now() + expiresInMs }) as StoredSession

async function suite (t: Test, store: GatewayStore): Promise<void> {
  await store.ping()
  await store.set('a', sessionWith({ user: { userId: 'u1', name: 'Zoë' } }, 60_000))
  const got = await store.get('a') as unknown as { data: { user: { name: string } } }
  t.equal(got.data.user.name, 'Zoë', 'round-trips the data')
  t.equal(await store.get('missing'), undefined, 'unknown id is nothing')
  await store.destroy('a')
  t.equal(await store.get('a'), undefined, 'destroyed')

  // An entry never outlives its session.
  await store.set('short', sessionWith({ x: 1 }, 30))
  while (await store.get('short') !== undefined) await new Promise(resolve => setImmediate(resolve))
  t.pass('expired entry is gone')

  // Side entries (a session's sealed tokens): set, read, expire, delete.
  await store.setAux('tokens:a', Buffer.from([0, 1, 2, 255]), 60_000)
  t.same(await store.getAux('tokens:a'), Buffer.from([0, 1, 2, 255]), 'bytes kept as bytes')
  await store.deleteAux('tokens:a')
  t.equal(await store.getAux('tokens:a'), undefined, 'deleted')
  await store.setAux('tokens:short', Buffer.from('x'), 20)
  while (await store.getAux('tokens:short') !== undefined) await new Promise(resolve => setImmediate(resolve))
  t.pass('an expired side entry is gone')
  // The refresh lock: exclusive, released, extended; a try without waiting says when it is taken.
  const held = await store.lock('l1', 60_000, 0)
  t.ok(held, 'free: taken')
  if (store.kind === 'redis') {
    t.equal(await store.lock('l1', 60_000, 0), undefined, 'held: a try without waiting gets nothing')
    await held?.extend(120_000)
    t.ok(await (store as RedisStore).client.pttl('entra-gw:lock:l1') > 60_000, 'extended by its holder')
  }
  await held?.release()
  const again = await store.lock('l1', 60_000, 0)
  t.ok(again, 'released: can be taken again')
  await again?.release()
  // Links (IdP logout: sid/sub → sessions): several sessions per key, taken once, expired ones left out.
  await store.link('sid:x', 's1', Date.now() + 60_000)
  await store.link('sid:x', 's2', Date.now() + 60_000)
  await store.link('sid:x', 'gone', Date.now() - 1)
  await store.link('sid:y', 's3', Date.now() + 60_000)
  t.same((await store.takeLinked('sid:x')).sort(), ['s1', 's2'], 'the live sessions of the key, not an expired one')
  t.same(await store.takeLinked('sid:x'), [], 'taken once')
  t.same(await store.takeLinked('sid:none'), [], 'unknown key: none')
  t.same(await store.takeLinked('sid:y'), ['s3'], 'other keys untouched')
  // Replay: a key is new once within its lifetime, new again after.
  t.equal(await store.firstUse('jti:1', 60_000), true, 'first use')
  t.equal(await store.firstUse('jti:1', 60_000), false, 'replayed')
  t.equal(await store.firstUse('jti:short', 20), true)
  while (!(await store.firstUse('jti:short', 20))) await new Promise(resolve => setImmediate(resolve))
  t.pass('a replay key expires')
  t.equal(await store.putIfAbsent('k', 'first'), 'first')
  t.equal(await store.putIfAbsent('k', 'second'), 'first', 'shared keys keep the first value')
}

t.test('memory store', async t => {
  const store = new MemoryStore({ maxSessions: 3 })
  t.teardown(() => store.close())
  await suite(t, store)
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
  await suite(t, store)
  // The refresh lock among replicas: one holder; a try (waitMs 0) answers at once; extend keeps it.
  const other = new RedisStore({ url: redis.url })
  t.teardown(() => other.close())
  const held = await store.lock('refresh:s1', 60_000, 0)
  t.ok(held, 'a free lock is had at once')
  t.equal(await other.lock('refresh:s1', 60_000, 0), undefined, 'held elsewhere: a try answers at once')
  await store.client.pexpire('entra-gw:lock:refresh:s1', 5000)
  t.equal(await held?.extend(), true, 'extended while still ours')
  t.ok(await store.client.pttl('entra-gw:lock:refresh:s1') > 50_000, 'another full TTL')
  await held?.release()
  const taken = await other.lock('refresh:s1', 60_000, 0)
  t.ok(taken, 'free again once released')
  t.equal(await held?.extend(), false, 'no longer ours: not extended')
  await held?.release()
  t.equal(await other.lock('refresh:s1', 60_000, 0), undefined, 'a stale release leaves the new holder\'s lock alone')
  await taken?.release()

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
  await redis.stop()
  await t.rejects(store.ping(), 'ping fails when Redis is down')
})
