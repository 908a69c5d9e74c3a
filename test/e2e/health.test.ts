// /healthz and /readyz with each dependency up and down.
import t from 'tap'
import { startStack } from '../helpers/stack.js'
import { startRedis, freePort } from '../helpers/redis.js'
import { RedisStore } from '../../src/session/redis-store.js'

async function ready (url: string): Promise<{ status: number, body: { status: string, checks: Record<string, string> } }> {
  const res = await fetch(`${url}/readyz`)
  return { status: res.status, body: await res.json() as { status: string, checks: Record<string, string> } }
}

/** Waits for the gateway's background discovery, by polling readiness (no sleeps). */
async function untilIdpReady (url: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await ready(url)).body.checks.idp === 'ok') return
    await new Promise(resolve => setImmediate(resolve))
  }
  throw new Error('IdP never became ready')
}

t.test('everything up', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const live = await fetch(`${stack.url}/healthz`)
  t.equal(live.status, 200)
  t.same(await live.json(), { status: 'ok' })
  await untilIdpReady(stack.url)
  const r = await ready(stack.url)
  t.equal(r.status, 200)
  t.same(r.body, { status: 'ready', checks: { idp: 'ok', session_store: 'ok', upstream: 'ok', upstream_capacity: 'ok' } })
  t.notOk(stack.upstream.requests.some(req => req.url === '/healthz' || req.url === '/readyz'), 'never proxied')
})

t.test('IdP down: not ready, alive, sign-in says so', async t => {
  const deadPort = await freePort()
  const stack = await startStack({ issuer: `http://127.0.0.1:${deadPort}/00000000-0000-0000-0000-000000000000/v2.0` })
  t.teardown(() => stack.close())
  t.equal((await fetch(`${stack.url}/healthz`)).status, 200)
  const r = await ready(stack.url)
  t.equal(r.status, 503)
  t.equal(r.body.checks.idp, 'down: metadata not loaded', 'a short fixed reason, no address or error text')
  t.equal(r.body.checks.upstream, 'ok')
  t.ok(stack.logs.some(l => l.event === 'not_ready' && l.check === 'idp' && l.detail !== undefined), 'the detail is in the log')
  const signin = await fetch(`${stack.url}/`, { headers: { accept: 'text/html' }, redirect: 'manual' })
  t.equal(signin.status, 503)
  const html = await signin.text()
  t.match(html, /cannot be reached/)
  t.notMatch(html, /at .*\.ts:\d+/, 'no stack trace')
})

t.test('upstream down', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  await untilIdpReady(stack.url)
  await stack.upstream.close()
  const r = await ready(stack.url)
  t.equal(r.status, 503)
  t.equal(r.body.checks.upstream, 'down: not answering')
  t.notMatch(JSON.stringify(r.body), /127\.0\.0\.1|ECONN|http:/, 'nothing internal is shown')
  t.equal(r.body.checks.idp, 'ok')
})

t.test('session store (Redis) down', async t => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = new RedisStore({ url: redis.url })
  t.teardown(() => store.close())
  const stack = await startStack({ store })
  t.teardown(() => stack.close())
  await untilIdpReady(stack.url)
  t.equal((await ready(stack.url)).status, 200)
  await redis.stop()
  const r = await ready(stack.url)
  t.equal(r.status, 503)
  t.match(r.body.checks.session_store, /^down: /)
  t.equal(r.body.checks.session_store, 'down: not answering', 'a short fixed reason; the detail is in the log')
})
