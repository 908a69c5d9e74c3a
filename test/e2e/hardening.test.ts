// The attacks and faults a security review found, each as a test over real HTTP.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Browser, signIn } from '../helpers/browser.js'
import { sessionId } from '../helpers/session.js'
import { startStack, CLIENT_ID, CLIENT_SECRET } from '../helpers/stack.js'
import { startIdp, DEMO_USERS } from '../../dev/idp.js'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { EventEmitter, once } from 'node:events'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const bob = DEMO_USERS.find(u => u.username === 'bob')!
const json = { accept: 'application/json' }

t.test('login CSRF: a callback whose state names an object property signs nobody in', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const metadata = await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json() as { authorization_endpoint: string }
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    // The attacker asks the IdP for a code of their own: no PKCE challenge, no nonce, that state.
    const attack = new URL(metadata.authorization_endpoint)
    attack.search = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: stack.config.redirectUri, response_type: 'code', scope: 'openid profile email offline_access', state: name }).toString()
    const attacker = new Browser()
    const { chain } = await signIn(attacker, attack.href, 'bob', 'bob')
    const callback = chain.find(u => u.startsWith(stack.config.redirectUri + '?'))
    t.ok(callback, `the IdP issued the attacker a code for state=${name}`)
    // The victim has a sign-in of their own pending, then opens the attacker's callback link.
    const victim = new Browser()
    await (await victim.request(`${stack.url}/c/new`)).arrayBuffer()
    t.ok(victim.cookie(stack.url, stack.config.loginCookieName), 'the victim has a pending sign-in')
    const res = await victim.request(callback!)
    t.equal(res.status, 400, `state=${name} is refused`)
    t.match(await res.text(), /belong to a sign-in started in this browser/)
    t.equal(victim.cookie(stack.url, stack.config.cookieName), undefined, 'no session was made')
    const page = await victim.request(`${stack.url}/headers`, { headers: json })
    t.equal(page.status, 401, 'the victim is not signed in as anyone')
  }
  t.notOk(stack.logs.some(l => l.event === 'sign_in'), 'nobody was signed in')
  t.notOk(stack.upstream.requests.some(r => r.headers['x-forwarded-user'] === bob.oid), 'no request went upstream as the attacker')
})

t.test('sign-in floods: 5,000 anonymous navigations leave a signed-in user signed in', async t => {
  const stack = await startStack({ env: { SESSION_MEMORY_MAX: '1000' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' }
  let redirects = 0
  for (let batch = 0; batch < 50; batch++) {
    const answers = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const res = await fetch(`${stack.url}/c/${batch}-${i}`, { headers: navigate, redirect: 'manual' })
      await res.arrayBuffer()
      return res.status
    }))
    redirects += answers.filter(s => s === 302).length
  }
  t.equal(redirects, 5000, 'every anonymous navigation was sent to sign in')
  t.equal((stack.store as unknown as { size: number }).size, 1, 'the store holds only the signed-in session')
  const res = await fetch(`${stack.url}/headers`, { headers: { ...json, cookie } })
  t.equal(res.status, 200, 'alice is still signed in')
})

t.test('public paths forward identity only for a user the policy admits there', async t => {
  const dir = t.testdir({})
  const rules = join(dir, 'rules.yaml')
  await writeFile(rules, 'public:\n  - /api/config\n')
  const stack = await startStack({ env: { AUTHZ_RULES_FILE: rules, OPENID_REQUIRED_ROLE: 'ChatUser' } })
  t.teardown(() => stack.close())
  const seen = async (who: string): Promise<Record<string, unknown>> => {
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, who, who)
    const before = stack.upstream.requests.length
    const res = await browser.request(`${stack.url}/api/config`, { headers: json })
    t.equal(res.status, 200, `${who}: a public path is served`)
    await res.arrayBuffer()
    return stack.upstream.requests.slice(before).at(-1)?.headers as Record<string, unknown>
  }
  t.equal((await seen('alice'))['x-forwarded-user'], alice.oid, 'an admitted user is named')
  const refused = await seen('bob')
  t.equal(refused['x-forwarded-user'], undefined, 'a user the policy refuses is forwarded as nobody')
  t.equal(refused['x-forwarded-identity'], undefined)
})

t.test('behind a trusted TLS proxy the sign-in sets one session cookie, with every flag', async t => {
  const publicOrigin = 'https://chat.example.test'
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${publicOrigin}/oauth/openid/callback`] }], users: DEMO_USERS })
  t.teardown(() => idp.close())
  const stack = await startStack({ idp, env: { DOMAIN_SERVER: publicOrigin, TRUSTED_PROXIES: '127.0.0.1' } })
  t.teardown(() => stack.close())
  const browser = new Browser({ tlsProxy: { publicOrigin, gateway: stack.url } })
  const result = await signIn(browser, `${publicOrigin}/c/new`, 'alice', 'alice')
  t.equal(result.response.status, 200, 'signed in through the TLS proxy and sent on to the page')
  const callback = browser.history.find(h => h.url.startsWith(`${publicOrigin}/oauth/openid/callback?`))
  t.ok(callback, 'the callback went through the proxy')
  const sessionCookies = callback!.setCookies.filter(c => c.startsWith('__Host-entra-gw='))
  t.equal(sessionCookies.length, 1, 'exactly one session cookie')
  const cookie = sessionCookies[0] ?? ''
  for (const flag of [/; Secure/, /; HttpOnly/, /; SameSite=Lax/, /; Path=\//]) t.match(cookie, flag)
  t.notMatch(cookie, /Domain=/i)
  const login = callback!.setCookies.filter(c => c.startsWith('__Host-entra-gw-login='))
  t.equal(login.length, 1, 'the used login transaction is cleared')
  t.match(login[0] ?? '', /Max-Age=0; .*; Secure/)
})

/** An upstream with a route that holds requests open until the test lets go, for the proxy's faults. */
async function startHoldingUpstream (): Promise<{ url: string, requests: Array<Record<string, unknown>>, held: Set<ServerResponse>, arrivals: (n: number) => Promise<void>, closed: (n: number) => Promise<void>, close: () => Promise<void> }> {
  const requests: Array<Record<string, unknown>> = []
  const held = new Set<ServerResponse>()
  const events = new EventEmitter()
  let arrived = 0
  let closedCount = 0
  const server = createServer((req, res) => {
    requests.push({ url: req.url, headers: req.headers })
    if (req.url?.startsWith('/hang') === true || req.url?.startsWith('/stream') === true) {
      if (req.url.startsWith('/stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write('data: open\n\n')
      }
      held.add(res)
      arrived++
      events.emit('arrived')
      res.once('close', () => { held.delete(res); closedCount++; events.emit('closed') })
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers }))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const until = async (name: string, ok: () => boolean): Promise<void> => {
    while (!ok()) await once(events, name)
  }
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    held,
    arrivals: async (n) => { await until('arrived', () => arrived >= n) },
    closed: async (n) => { await until('closed', () => closedCount >= n) },
    close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') }
  }
}

t.test('1,000 open streams through one gateway: the next request is answered; disconnects free them', async t => {
  const upstream = await startHoldingUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack({ upstream: { url: upstream.url, requests: [], close: async () => {} } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  const streams = Array.from({ length: 1000 }, () => new AbortController())
  const opened = streams.map(async (c, i) => {
    const res = await fetch(`${stack.url}/stream/${i}`, { headers: { cookie, accept: 'text/event-stream' }, signal: c.signal })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    return reader
  })
  await Promise.all(opened)
  await upstream.arrivals(1000)
  t.equal(upstream.held.size, 1000, 'the upstream holds 1,000 streams from one gateway')
  const next = await fetch(`${stack.url}/headers`, { headers: { cookie, ...json } })
  t.equal(next.status, 200, 'and the next request is answered')
  t.equal(((await next.json()) as { headers: Record<string, string> }).headers['x-forwarded-user'], alice.oid)
  for (const c of streams) c.abort()
  await upstream.closed(1000)
  t.equal(upstream.held.size, 0, 'every stream whose client went away was closed upstream')
})

t.test('the upstream: a client gone while waiting aborts it, no headers in time is a 504, past the in-flight bound a prompt 503', async t => {
  const upstream = await startHoldingUpstream()
  t.teardown(() => upstream.close())
  const stack = await startStack({ upstream: { url: upstream.url, requests: [], close: async () => {} }, env: { UPSTREAM_HEADERS_TIMEOUT_SECONDS: '1', UPSTREAM_MAX_CONCURRENT: '2' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`

  // Waiting for headers, the client leaves: the upstream request is aborted at once.
  const leaving = new AbortController()
  const gone = fetch(`${stack.url}/hang/leave`, { headers: { cookie }, signal: leaving.signal }).catch(() => undefined)
  await upstream.arrivals(1)
  leaving.abort()
  await gone
  await upstream.closed(1)
  t.pass('the upstream saw the abandoned request closed')

  // No headers within UPSTREAM_HEADERS_TIMEOUT_SECONDS: 504, as JSON and as a page.
  const slow = await fetch(`${stack.url}/hang/slow`, { headers: { cookie, ...json } })
  t.equal(slow.status, 504)
  t.equal(((await slow.json()) as Record<string, string>).error, 'upstream_timeout')
  const slowPage = await fetch(`${stack.url}/hang/slow-page`, { headers: { cookie, accept: 'text/html' } })
  t.equal(slowPage.status, 504)
  t.match(await slowPage.text(), /did not answer in time/)
  t.ok(stack.logs.some(l => l.event === 'upstream_error' && (l.err as { code?: string })?.code === 'UND_ERR_HEADERS_TIMEOUT'))

  // Two streams in flight with UPSTREAM_MAX_CONCURRENT=2: the third is refused at once, and /readyz says why.
  const holders = [new AbortController(), new AbortController()]
  await Promise.all(holders.map(async (c, i) => {
    const res = await fetch(`${stack.url}/stream/h${i}`, { headers: { cookie }, signal: c.signal })
    await (res.body as ReadableStream<Uint8Array>).getReader().read()
  }))
  const busy = await fetch(`${stack.url}/headers`, { headers: { cookie, ...json } })
  t.equal(busy.status, 503)
  t.equal(busy.headers.get('retry-after'), '5')
  t.equal(((await busy.json()) as Record<string, string>).error, 'gateway_busy')
  const ready = await (await fetch(`${stack.url}/readyz`)).json() as { checks: Record<string, string> }
  t.equal(ready.checks.upstream_capacity, 'down: at the in-flight request limit')
  for (const c of holders) c.abort()
  await upstream.closed(5)
  const after = await fetch(`${stack.url}/headers`, { headers: { cookie, ...json } })
  t.equal(after.status, 200, 'served again once streams end')
})

t.test('request targets, hop-by-hop and forwarding headers, LOGOUT_PATHS spellings', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  const port = Number(new URL(stack.url).port)
  for (const target of ['http://127.0.0.1/headers', '*']) {
    const raw = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    t.match(raw, /^HTTP\/1\.1 400 /, `${target}: answered 400, not 500`)
  }
  const before = stack.upstream.requests.length
  // Sent raw: fetch() itself refuses to send Keep-Alive or Upgrade.
  const spoofed = ['Keep-Alive: timeout=5', 'Upgrade: h2c', 'Connection: keep-alive, Upgrade', 'X-Real-IP: 6.6.6.6', 'X-Client-IP: 6.6.6.6', 'X-Original-URL: /admin', 'X-Forwarded-Prefix: /evil', 'X_Forwarded_For: 6.6.6.6', 'X_Real_IP: 6.6.6.6', 'X-Forwarded-Server: evil']
  const answer = await rawRequest(port, `GET /headers HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${cookie}\r\nAccept: application/json\r\n${spoofed.join('\r\n')}\r\n\r\n`, true)
  t.match(answer, /^HTTP\/1\.1 200 /, 'Keep-Alive and Upgrade from the client do not break the proxy')
  const got = stack.upstream.requests.slice(before).at(-1)?.headers as Record<string, string>
  for (const name of ['keep-alive', 'upgrade', 'x-real-ip', 'x-client-ip', 'x-original-url', 'x-forwarded-prefix', 'x_forwarded_for', 'x_real_ip', 'x-forwarded-server']) {
    t.equal(got[name], undefined, `${name} does not reach the upstream`)
  }
  t.equal(got['x-forwarded-for'], '127.0.0.1')

  // LibreChat's logout, spelled as Express would still route it, ends the gateway session too.
  for (const path of ['/api/auth/logout/', '/API/auth/logout']) {
    const b = new Browser()
    await signIn(b, `${stack.url}/`, 'alice', 'alice')
    const out = await b.request(`${stack.url}${path}`, { method: 'POST', headers: json })
    t.equal(out.status, 200)
    t.equal(b.cookie(stack.url, stack.config.cookieName), undefined, `${path}: the gateway cookie is cleared`)
    t.equal((await b.request(`${stack.url}/headers`, { headers: json })).status, 401, `${path}: signed out of the gateway`)
  }
})

t.test('the IdP down during the callback: 503 idp_unavailable, and the sign-in can be retried', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  browser.stopBefore = stack.config.redirectUri
  const { chain } = await signIn(browser, `${stack.url}/c/new`, 'alice', 'alice')
  const callback = chain.at(-1) ?? ''
  t.ok(callback.startsWith(stack.config.redirectUri + '?code='), 'the IdP sent the browser back with a code')
  stack.idp.setDown(true)
  const failed = await browser.request(callback, { headers: { accept: 'text/html' } })
  t.equal(failed.status, 503, 'an outage, not a refusal')
  const page = await failed.text()
  t.match(page, /could not be reached/)
  t.match(page, /Try signing in again/)
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'idp_unavailable'), 'logged as idp_unavailable')
  t.notOk(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'token_invalid'), 'never as an invalid token')
  stack.idp.setDown(false)
  browser.stopBefore = undefined
  const retry = /href="([^"]*)"[^>]*>Try signing in again/.exec(page)?.[1]?.replaceAll('&amp;', '&') ?? ''
  const again = await browser.follow(new URL(retry, stack.url).href)
  t.equal(again.response.status, 200, 'trying again signs in')
  t.equal(again.chain.at(-1), `${stack.url}/c/new`, 'and returns to the page the user wanted')
})

/** One request over a raw socket; with `untilBody`, returns once the JSON body has arrived (the connection stays open). */
async function rawRequest (port: number, text: string, untilBody = false): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.write(text)
  let out = ''
  const done = new Promise<void>(resolve => {
    socket.on('data', (d: Buffer) => {
      out += d.toString()
      if (untilBody && /\r\n\r\n[\s\S]*\}\s*$/.test(out)) resolve()
    })
    socket.once('close', () => resolve())
  })
  await done
  socket.destroy()
  return out
}

t.test('an upgrade whose client resets the connection during the gate does not take the gateway down', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const port = Number(new URL(stack.url).port)
  for (let i = 0; i < 20; i++) {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`GET /ws/${i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)
    socket.resetAndDestroy()
    await once(socket, 'close')
  }
  t.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'still up')
})

t.test('signing in again leaves no tokens of the old session behind', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const first = sessionId(browser, stack.url, stack.config.cookieName)
  t.ok(await stack.store.getAux(`tokens:${first}`), 'the first session has its tokens')
  const again = await browser.follow(`${stack.url}/oauth2/sign_in?prompt=select_account`).catch(() => undefined)
  t.ok(again)
  await signIn(browser, `${stack.url}/oauth2/sign_in?prompt=login`, 'alice', 'alice')
  const second = sessionId(browser, stack.url, stack.config.cookieName)
  t.not(second, first, 'a new session id')
  t.equal(await stack.store.getAux(`tokens:${first}`), undefined, 'the old session\'s tokens are gone')
  t.equal(await stack.store.get(first), undefined, 'and so is the old session')
})
