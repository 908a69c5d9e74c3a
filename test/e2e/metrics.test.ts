// Prometheus metrics: on their own listener, scraped and parsed, never on the public port.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { freePort } from '../helpers/redis.js'

/** Prometheus text format → { 'name{labels}': value }. */
function parse (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line)
    if (m === null) throw new Error(`not Prometheus text: ${line}`)
    out.set(m[1] as string, Number(m[2]))
  }
  return out
}

t.test('metrics are scraped from METRICS_PORT and count what happened', async t => {
  const metricsPort = await freePort()
  const stack = await startStack({ env: { METRICS_PORT: String(metricsPort), OPENID_REQUIRED_ROLE: 'ChatUser' } })
  t.teardown(() => stack.close())
  const alice = new Browser()
  await signIn(alice, `${stack.url}/`, 'alice', 'alice')
  await (await alice.request(`${stack.url}/api/agents/chat/stream/1`, { headers: { accept: 'text/event-stream' } })).text()
  const bob = new Browser()
  await signIn(bob, `${stack.url}/`, 'bob', 'bob')

  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /text\/plain/)
  const m = parse(await res.text())
  t.equal(m.get('entra_gateway_sign_ins_total{result="success"}'), 2)
  t.equal(m.get('entra_gateway_denials_total{reason="missing_role"}'), 1)
  t.ok((m.get('entra_gateway_requests_total{route_class="proxy",status="200"}') ?? 0) >= 2)
  t.ok((m.get('entra_gateway_upstream_duration_seconds_count{status="200"}') ?? 0) >= 2)
  t.equal(m.get('entra_gateway_sse_streams_open'), 0, 'the stream closed again')
  t.equal(m.get('entra_gateway_active_sessions'), 2)
  t.ok([...m.keys()].some(k => k.startsWith('entra_gateway_process_resident_memory_bytes')))

  const pub = await fetch(`${stack.url}/metrics`, { headers: { accept: 'application/json' } })
  t.equal(pub.status, 401, 'not served on the public port (it is an ordinary protected path there)')
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404)
})
