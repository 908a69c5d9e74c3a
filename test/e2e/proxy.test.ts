// Proxying for a signed-in user: bodies without a size cap, streams, trusted proxies, and no
// session write or Set-Cookie per request.
import t from 'tap'
import type { StoredSession } from '../../src/session/store.js'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { MemoryStore } from '../../src/session/memory-store.js'
import { freePort } from '../helpers/redis.js'

class CountingStore extends MemoryStore {
  writes = 0
  override async set (id: string, session: StoredSession): Promise<void> {
    this.writes++
    await super.set(id, session)
  }
}

t.test('proxied requests: no store write, no Set-Cookie, bodies past bodyLimit, SSE', async t => {
  const store = new CountingStore({ maxSessions: 100 })
  const stack = await startStack({ store })
  t.teardown(async () => { await stack.close(); await store.close() })
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const writesAfterSignIn = store.writes

  for (let i = 0; i < 5; i++) {
    const res = await browser.request(`${stack.url}/headers?i=${i}`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 200)
    t.equal(res.headers.get('set-cookie'), null)
    await res.arrayBuffer()
  }
  t.equal(store.writes, writesAfterSignIn, 'no session write per proxied request')

  // 5 MB: far past the gateway's own 64 KiB bodyLimit, streamed to the upstream.
  const big = 'x'.repeat(5 * 1024 * 1024)
  const up = await browser.request(`${stack.url}/api/files`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/octet-stream' }, body: big })
  t.equal(up.status, 200)
  t.same(await up.json(), { bytes: big.length })

  const sse = await browser.request(`${stack.url}/api/agents/chat/stream/abc`, { headers: { accept: 'text/event-stream' } })
  t.equal(sse.status, 200)
  t.match(sse.headers.get('content-type') ?? '', /text\/event-stream/)
  const text = await sse.text()
  t.equal(text.match(/^data: /gm)?.length, 5, 'every event arrives')
})

t.test('X-Forwarded-For is believed only from TRUSTED_PROXIES', async t => {
  const stack = await startStack({ env: { TRUSTED_PROXIES: '127.0.0.1/32' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const res = await browser.request(`${stack.url}/headers`, { headers: { accept: 'application/json', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' } })
  const seen = await res.json() as { headers: Record<string, string> }
  t.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'https')
  t.equal(seen.headers['x-forwarded-user'] !== undefined, true)
})

t.test('upstream down: a 502 and exactly one log line, with the socket error code readable', async t => {
  // Nothing listens on this port: every proxied request meets ECONNREFUSED.
  const port = await freePort()
  const stack = await startStack({ upstream: { url: `http://127.0.0.1:${port}`, requests: [], close: async () => {} } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 502, 'signed in; the last hop, the app itself, is not answering')
  const res = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 502)
  const body = await res.json() as Record<string, string>
  t.equal(body.error, 'upstream_unavailable')
  const lines = stack.logs.filter(l => l.reqId === body.request_id)
  t.equal(lines.length, 1, 'one log line for one failure')
  t.match(lines[0], { event: 'upstream_error', level: 40, err: { code: 'ECONNREFUSED', message: /ECONNREFUSED/ } })
  t.notOk(stack.rawLogs().includes('[redacted]'), 'nothing in these logs is a secret')
})
