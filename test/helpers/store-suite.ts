// The one suite every session store must pass (oauth2-proxy's pkg/sessions/tests): run by
// test/stores/session-stores.test.ts against the memory store and one redis-server, and by the
// Sentinel and Cluster tests against those.
import type { Test } from 'tap'
import type { RedisStore } from '../../src/session/redis-store.js'
import type { GatewayStore, StoredSession } from '../../src/session/store.js'

export const sessionWith = (data: Record<string, unknown>, expiresInMs: number): StoredSession =>
  ({ data, expiresAt: Date.now() + expiresInMs }) as StoredSession

export async function storeSuite (t: Test, store: GatewayStore): Promise<void> {
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

/** The refresh lock among two Redis stores (two replicas): one holder, extension, a stale release. */
export async function redisLockSuite (t: Test, store: RedisStore, other: RedisStore): Promise<void> {
  // One holder; a try (waitMs 0) answers at once; extend keeps it.
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
}
