// In front of LibreChat: streams event by event, disconnects propagate, WebSockets carry the
// identity, big bodies stream both ways, LibreChat's headers and cookies pass untouched, one
// redirect URI serves both sign-ins, and logging out of the app logs out of the gateway.
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import WebSocket from 'ws'
import { stackWithLibreChat } from '../helpers/librechat.js'
import { DEMO_USERS } from '../../dev/idp.js'
import { readEvents } from '../helpers/sse.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!

t.test('SSE arrives event by event: the upstream writes the next only after the client got the last', async t => {
  const { stack, lc, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const res = await fetch(`${stack.url}/api/agents/chat/stream/abc`, { headers: { accept: 'text/event-stream', cookie } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  t.equal(res.headers.get('content-encoding'), null, 'never compressed by the gateway')
  // If the gateway buffered, event 0 would never arrive alone and this loop would stall.
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const seen = await readEvents(reader, 5, () => { lc.nextEvent() })
  t.same(seen, [0, 1, 2, 3, 4])
})

t.test('a client that disconnects aborts the upstream stream at once', async t => {
  const { stack, lc, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const controller = new AbortController()
  const res = await fetch(`${stack.url}/api/agents/chat/stream/abc`, { headers: { accept: 'text/event-stream', cookie }, signal: controller.signal })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  await reader.read() // the first event is here; the upstream waits before writing the next
  controller.abort()
  await lc.streamClosed
  t.pass('the upstream saw its response closed')
})

t.test('no timeout ends a long, quiet stream', async t => {
  const { stack } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  // Node would otherwise cut a request at 300 s (requestTimeout) and undici an idle body at 300 s.
  t.equal(stack.app.server.requestTimeout, 0)
  t.equal(stack.app.server.timeout, 0)
})

t.test('WebSocket upgrades are authenticated, carry the identity and lose the gateway cookie', async t => {
  const { stack, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const ws = new WebSocket(`${stack.url.replace('http', 'ws')}/ws`, { headers: { cookie: `${cookie}; refreshToken=lc`, 'x-forwarded-user': 'mallory' } })
  const first = await new Promise<string>((resolve, reject) => { ws.once('message', d => resolve(String(d))); ws.once('error', reject) })
  const { headers } = JSON.parse(first) as { headers: Record<string, string> }
  t.equal(headers['x-forwarded-user'], alice.oid)
  t.equal(headers['x-forwarded-email'], alice.email)
  t.equal(headers.cookie, 'refreshToken=lc')
  ws.send('hello')
  t.equal(await new Promise<string>(resolve => ws.once('message', d => resolve(String(d)))), 'echo:hello')
  ws.close()

  const anon = new WebSocket(`${stack.url.replace('http', 'ws')}/ws`)
  const status = await new Promise<number>(resolve => {
    anon.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    anon.once('open', () => resolve(101))
    anon.once('error', () => resolve(-1))
  })
  t.equal(status, 401, 'an unauthenticated upgrade is refused')
})

t.test('200 MB up and down, streamed, with bounded memory', async t => {
  const { stack, lc, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const total = 200 * 1024 * 1024
  const chunk = Buffer.alloc(1024 * 1024, 97)
  global.gc?.()
  const rssBefore = process.memoryUsage().rss
  let peak = rssBefore
  const sample = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 50)
  t.teardown(() => clearInterval(sample))

  // Upload: a chunked multipart-sized body from a stream, never held whole.
  const body = Readable.from((function * () { for (let i = 0; i < total / chunk.length; i++) yield chunk })())
  const up = await fetch(`${stack.url}/api/files`, { method: 'POST', headers: { cookie, 'content-type': 'multipart/form-data; boundary=x' }, body: Readable.toWeb(body) as ReadableStream, duplex: 'half' } as RequestInit)
  t.equal(up.status, 200)
  t.same(await up.json(), { bytes: total })

  // Download: counted as it arrives.
  const down = await fetch(`${stack.url}/api/files/download?bytes=${total}`, { headers: { cookie } })
  let received = 0
  for await (const piece of down.body as unknown as AsyncIterable<Uint8Array>) received += piece.length
  t.equal(received, total)
  clearInterval(sample)
  // Test, gateway and upstream share this process; a buffered 200 MB body would show here as
  // 200 MB or more at once. Streaming grows RSS by buffers and pools that Node keeps (about
  // 60 MB on Node 20, up to about 100 MB on Node 24): the bound sits below one whole body.
  t.ok(peak - rssBefore < 160 * 1024 * 1024, `memory grew ${Math.round((peak - rssBefore) / 1048576)} MB for 400 MB moved (a buffered body alone is 200 MB)`)
  t.same(lc.uploadedBytes, [total])
})

t.test('Expect: 100-continue and keep-alive to the upstream', async t => {
  const { stack, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const port = new URL(stack.url).port
  const answer = await new Promise<{ status: number, body: string, continued: boolean }>((resolve, reject) => {
    let continued = false
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/files', headers: { cookie, expect: '100-continue', 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } })
    req.on('continue', () => { continued = true; req.write('a'.repeat(1000)); req.end('b'.repeat(1000)) })
    req.on('response', res => {
      let body = ''
      res.on('data', d => { body += String(d) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, continued }))
    })
    req.on('error', reject)
    req.flushHeaders()
  })
  t.ok(answer.continued, '100 Continue came back before the body was sent')
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { bytes: 2000 })
})

t.test("LibreChat's headers, cookies and Set-Cookie pass untouched on every status", async t => {
  const { stack, lc, cookie } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  for (const status of [200, 302, 401, 403, 500]) {
    const res = await fetch(`${stack.url}/cookies?status=${status}`, { headers: { accept: 'application/json', cookie, authorization: 'Bearer lc-jwt' }, redirect: 'manual' })
    t.equal(res.status, status)
    t.same(res.headers.getSetCookie(), ['refreshToken=r1; Path=/; HttpOnly; Secure; SameSite=Strict', 'token_provider=openid; Path=/', 'openid_user_id=u1; Path=/; HttpOnly'], `Set-Cookie on ${status}`)
    if (status === 302) t.equal(res.headers.get('location'), '/c/new')
  }
  const sent = lc.requests.at(-1)
  t.equal(sent?.headers.authorization, 'Bearer lc-jwt')
})

t.test('one redirect URI for both: LibreChat\'s own OpenID login passes for a signed-in user', async t => {
  const { stack, lc, browser } = await stackWithLibreChat()
  t.teardown(() => stack.close())
  const start = await browser.request(`${stack.url}/oauth/openid`)
  t.equal(start.status, 200, "LibreChat's start route is the upstream's")
  t.equal(lc.requests.at(-1)?.url, '/oauth/openid')
  const cb = await browser.request(`${stack.url}/oauth/openid/callback?code=lc-code&state=lc-state`)
  t.equal(cb.status, 200)
  t.equal(lc.requests.at(-1)?.url, '/oauth/openid/callback?code=lc-code&state=lc-state', 'proxied untouched')
})

t.test('logging out of LibreChat ends the gateway session; with end-session, the Entra session next', async t => {
  const { stack, lc, browser } = await stackWithLibreChat({ OPENID_USE_END_SESSION_ENDPOINT: 'true' })
  t.teardown(() => stack.close())
  const out = await browser.request(`${stack.url}/api/auth/logout`, { method: 'POST', headers: { accept: 'application/json' } })
  t.equal(out.status, 200)
  t.ok(out.headers.getSetCookie().some(c => c.startsWith('refreshToken=;')), "LibreChat's own cookie clearing passes")
  t.equal(lc.requests.at(-1)?.url, '/api/auth/logout')
  const api = await browser.request(`${stack.url}/api/convos`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401, 'the gateway session ended with it')
  const nav = await browser.request(`${stack.url}/c/new`)
  t.equal(nav.status, 303)
  const to = new URL(nav.headers.get('location') ?? '')
  t.ok(to.href.startsWith(stack.idp.origin), 'the next navigation ends the Entra session')
  t.ok(to.searchParams.get('id_token_hint'))
  t.equal(to.searchParams.get('post_logout_redirect_uri'), `${stack.url}/oauth2/signed_out`, "and then the gateway's signed-out page, not a new sign-in")
  const again = await browser.request(`${stack.url}/c/new`)
  t.equal(again.status, 302, 'then an ordinary sign-in')
  t.ok(stack.logs.some(l => l.event === 'sign_out' && l.reason === 'upstream_logout'))
})
