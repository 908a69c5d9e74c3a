// A session store that stops answering: a prompt 503 with Retry-After for pages and API calls
// alike (never a hang, never a 500), one warning when the outage starts and one line when it
// ends, no command sent to a store known to be down, and recovery without a restart.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { startRedis, type RedisServer } from '../helpers/redis.js'

const json = { accept: 'application/json' }

async function getCalls (client: Redis): Promise<number> {
  const info = await client.info('commandstats')
  return Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

/** A gateway on a real redis-server, with alice signed in. */
async function signedInOnRedis (t: Test): Promise<{ redis: RedisServer, stack: Stack, browser: Browser }> {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const stack = await startStack({ env: { SESSION_STORE: 'redis', REDIS_URL: redis.url } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  return { redis, stack, browser }
}

t.test('a frozen Redis: 503 session_store_unavailable at once, logged once, recovered by itself', async t => {
  const { redis, stack, browser } = await signedInOnRedis(t)
  t.equal((await browser.request(`${stack.url}/headers`, { headers: json })).status, 200)
  const observer = new Redis(redis.url)
  t.teardown(() => observer.disconnect())
  const getsBefore = await getCalls(observer)

  redis.freeze()
  // The first request waits for the command timeout; it is answered, not left hanging.
  const first = await browser.request(`${stack.url}/headers`, { headers: json })
  t.equal(first.status, 503)
  t.equal(first.headers.get('retry-after'), '5')
  const body = await first.json() as Record<string, string>
  t.equal(body.error, 'session_store_unavailable')
  t.match(body.message, /session store/)

  // Known to be down now: further requests fail without sending anything to Redis.
  const more = await Promise.all(Array.from({ length: 20 }, async () => await browser.request(`${stack.url}/c/${Math.random()}`)))
  t.same(more.map(r => r.status), Array(20).fill(503), 'pages too get 503')
  const page = await more[0]!.text()
  t.match(page, /session store is not answering/)
  t.notMatch(page, /node_modules|\.ts:\d+|at [A-Za-z]+ \(/, 'no stack trace on the page')
  t.match((await fetch(`${stack.url}/readyz`)).status, 503)

  redis.thaw()
  // Recovery needs no restart: poll (bounded) until the store's probe has seen it answer.
  let status = 0
  for (let i = 0; i < 400 && status !== 200; i++) {
    status = (await browser.request(`${stack.url}/headers`, { headers: json })).status
    if (status !== 200) await new Promise(resolve => setTimeout(resolve, 25))
  }
  t.equal(status, 200, 'served again once Redis answers')
  const gets = await getCalls(observer) - getsBefore
  // The frozen GET, then the successful one(s) after recovery; none for the 20 failed-fast requests.
  t.ok(gets >= 2 && gets <= 3, `only the first request reached the frozen store (${gets} GETs)`)

  const down = stack.logs.filter(l => l.event === 'session_store_down')
  const up = stack.logs.filter(l => l.event === 'session_store_up')
  t.equal(down.length, 1, 'the outage is logged once when it starts')
  t.equal(down[0]?.level, 40, 'at warn')
  t.equal(up.length, 1, 'and once when it ends')
  t.notOk(stack.logs.some(l => l.level === 50), 'no error (stack) line per request')
})

t.test('a stopped Redis: signed-in requests get 503, not 500', async t => {
  const { redis, stack, browser } = await signedInOnRedis(t)
  await redis.stop()
  for (const headers of [json, {}]) {
    const res = await browser.request(`${stack.url}/headers`, { headers })
    t.equal(res.status, 503)
    t.equal(res.headers.get('retry-after'), '5')
    t.notMatch(await res.text(), /node_modules|\.ts:\d+/)
  }
  // An anonymous visitor needs no store to be sent to sign in.
  const anon = await new Browser().request(`${stack.url}/x`)
  t.equal(anon.status, 302)
})
