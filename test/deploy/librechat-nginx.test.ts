// deploy/librechat/client/nginx.conf, as shipped, in a real nginx (Debian's) in front of a real
// gateway, the Entra-shaped IdP and a LibreChat stand-in. Only the listen addresses, the
// upstream host names (compose service names here) and, for TLS, the certificate paths are
// rewritten, each of which must occur exactly once: the rest is the operator's file.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import WebSocket from 'ws'
import { Agent, setGlobalDispatcher } from 'undici'
import { startNginx, type Nginx } from '../../dev/nginx.js'
import { freePort } from '../../dev/ports.js'
import { startIdp, DEMO_USERS } from '../../dev/idp.js'
import { Browser, signIn } from '../helpers/browser.js'
import { startLibreChat, type LibreChatStandIn } from '../helpers/librechat.js'
import { startStack, CLIENT_ID, CLIENT_SECRET, type Stack } from '../helpers/stack.js'
import { read } from '../helpers/deploy.js'

const SHIPPED = read('deploy/librechat/client/nginx.conf')
const alice = DEMO_USERS.find(u => u.username === 'alice')!

/** Replaces `from` by `to`, which must occur exactly once (else the shipped file changed shape). */
function once1 (text: string, from: string, to: string): string {
  const at = text.indexOf(from)
  if (at === -1 || text.indexOf(from, at + 1) !== -1) throw new Error(`nginx.conf: expected exactly one "${from.trim()}"`)
  return text.slice(0, at) + to + text.slice(at + from.length)
}

interface Ports { nginx: number, gateway: number, admin: number }
/** The shipped file with loopback addresses for the compose names; with TLS, the operator's three lines uncommented. */
function forTest (p: Ports, tls?: { dir: string }): string {
  let c = once1(SHIPPED, 'proxy_pass http://entra-gateway:3080;', `proxy_pass http://127.0.0.1:${p.gateway};`)
  c = once1(c, 'proxy_pass http://admin-panel:3000;', `proxy_pass http://127.0.0.1:${p.admin};`)
  c = once1(c, '\n    listen 80;\n', `\n    listen 127.0.0.1:${p.nginx};\n`)
  if (tls === undefined) return once1(c, '\n    listen 80 default_server;\n', `\n    listen 127.0.0.1:${p.nginx} default_server;\n`)
  c = once1(c, '\n    listen 80 default_server;\n', '\n')
  c = once1(c, '# listen 443 ssl default_server;', `listen 127.0.0.1:${p.nginx} ssl default_server;`)
  c = once1(c, '# ssl_certificate     /etc/nginx/ssl/nginx.crt;', `ssl_certificate     ${tls.dir}/nginx.crt;`)
  return once1(c, '# ssl_certificate_key /etc/nginx/ssl/nginx.key;', `ssl_certificate_key ${tls.dir}/nginx.key;`)
}

/** A stand-in for LibreChat's admin panel: says who it is and what it was sent. */
async function startAdmin (): Promise<{ port: number, close: () => Promise<void> }> {
  const server = createServer((req: IncomingMessage, res) => res.end(JSON.stringify({ admin: true, host: req.headers.host })))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: (server.address() as { port: number }).port, close: async () => { server.closeAllConnections(); server.close(); await once(server, 'close') } }
}

interface Edge { nginx: Nginx, stack: Stack, lc: LibreChatStandIn, publicUrl: string, browser: Browser, cookie: string }

/** LibreChat stand-in, gateway (DOMAIN_SERVER = nginx's URL), nginx with the shipped file, alice signed in through nginx. */
async function edge (t: Test, opts: { trusted?: boolean, tls?: { dir: string } } = {}): Promise<Edge> {
  const lc = await startLibreChat()
  t.teardown(() => lc.close())
  const admin = await startAdmin()
  t.teardown(() => admin.close())
  // nginx's URL is DOMAIN_SERVER, registered at the IdP before the gateway starts.
  const nginxPort = await freePort()
  const publicUrl = `${opts.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${nginxPort}`
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${publicUrl}/oauth/openid/callback`] }], users: DEMO_USERS })
  t.teardown(() => idp.close())
  const env: Record<string, string> = { DOMAIN_SERVER: publicUrl }
  if (opts.trusted !== false) env.TRUSTED_PROXIES = '127.0.0.1'
  const stack = await startStack({ idp, env, upstream: { url: lc.url, requests: lc.requests as never, close: async () => {} } })
  t.teardown(() => stack.close())
  const gateway = Number(new URL(stack.url).port)
  const nginx = await startNginx({ port: nginxPort, http: port => forTest({ nginx: port, gateway, admin: admin.port }, opts.tls) })
  t.teardown(() => nginx.stop())
  const browser = new Browser()
  const signedIn = await signIn(browser, `${publicUrl}/c/new`, 'alice', 'alice')
  t.equal(signedIn.response.status, 200, 'alice signs in through nginx and reaches LibreChat')
  await signedIn.response.arrayBuffer()
  t.notOk(signedIn.chain.some(u => u.startsWith(stack.url)), 'every hop went through nginx, none to the gateway directly')
  const cookie = `${stack.config.cookieName}=${browser.cookie(publicUrl, stack.config.cookieName) ?? ''}`
  return { nginx, stack, lc, publicUrl, browser, cookie }
}

t.test('sign-in, identity, streaming, WebSockets and uploads through the shipped nginx.conf', async t => {
  const { lc, publicUrl, cookie, nginx } = await edge(t)
  t.match(nginx.version, /^nginx\//)

  const seen = lc.requests.find(r => r.url === '/c/new')
  t.equal(seen?.headers['x-forwarded-user'], alice.oid, 'LibreChat receives the signed-in user')

  // Server-sent events: the stand-in writes event n+1 only after the test has received event n,
  // so a buffering proxy would hold the first event and never see the second asked for. Without
  // LibreChat's X-Accel-Buffering: no, so that nginx.conf's own proxy_buffering off is what counts.
  const res = await fetch(`${publicUrl}/api/agents/chat/stream/1?accel=omit`, { headers: { cookie, accept: 'text/event-stream' } })
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  t.equal(res.headers.get('x-accel-buffering'), null, 'no X-Accel-Buffering from upstream to lean on')
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let text = ''
  for (let n = 0; n < 5; n++) {
    while (!text.includes(`data: {"n":${n}}`)) {
      const { value, done } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
    t.ok(text.includes(`data: {"n":${n}}`), `event ${n} arrived before event ${n + 1} was written`)
    lc.nextEvent()
  }
  while (!(await reader.read()).done) { /* the stream ends after the fifth event */ }

  // WebSocket upgrade through nginx and the gateway.
  const ws = new WebSocket(`${publicUrl.replace('http', 'ws')}/ws`, { headers: { cookie } })
  const first = await new Promise<string>((resolve, reject) => { ws.once('message', d => resolve(String(d))); ws.once('error', reject) })
  t.equal((JSON.parse(first) as { headers: Record<string, string> }).headers['x-forwarded-user'], alice.oid, 'the WebSocket carries the identity')
  ws.send('hi')
  t.equal(await new Promise<string>(resolve => ws.once('message', d => resolve(String(d)))), 'echo:hi')
  ws.close()

  // Uploads up to LibreChat's limit pass whole; above it nginx answers 413 before LibreChat sees a byte.
  const limitMb = Number(/client_max_body_size (\d+)M;/.exec(SHIPPED)?.[1])
  t.equal(limitMb, 25, 'LibreChat\'s request limit (25 MB)')
  const size = (limitMb - 1) * 1024 * 1024
  const up = await fetch(`${publicUrl}/api/files`, { method: 'POST', headers: { cookie, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(size, 97) })
  t.equal(up.status, 200, `a ${limitMb - 1} MB upload passes nginx and the gateway`)
  t.same(await up.json(), { bytes: size }, 'LibreChat receives every byte')
  const uploads = lc.uploadedBytes.length
  const tooBig = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${publicUrl}/api/files`, { method: 'POST', headers: { cookie, 'content-type': 'application/octet-stream', 'content-length': String((limitMb + 1) * 1024 * 1024) } })
    req.on('response', r => { r.resume(); resolve(r.statusCode ?? 0); req.destroy() })
    req.on('error', reject)
    req.flushHeaders()
  })
  t.equal(tooBig, 413, 'above the limit: 413 from nginx')
  t.equal(lc.uploadedBytes.length, uploads, 'LibreChat saw nothing of it')
})

t.test('nginx sets X-Forwarded-* itself: a client\'s own claims stop there', async t => {
  const { lc, publicUrl, cookie } = await edge(t)
  const res = await fetch(`${publicUrl}/headers`, { headers: { cookie, accept: 'application/json', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } })
  t.equal(res.status, 200)
  await res.arrayBuffer()
  const h = lc.requests.find(r => r.url === '/headers')?.headers ?? {}
  // nginx's $remote_addr, then the address the gateway saw (nginx): all loopback here.
  t.equal(h['x-forwarded-for'], '127.0.0.1, 127.0.0.1', 'the client\'s X-Forwarded-For is replaced, not appended to')
  t.equal(h['x-forwarded-proto'], 'http', 'the scheme nginx served, not the client\'s claim')
  t.equal(h['x-forwarded-host'], new URL(publicUrl).hostname, 'the host nginx served ($host), not the client\'s claim')
})

t.test('the admin panel stays reachable on its host, as in LibreChat\'s file', async t => {
  const { nginx } = await edge(t)
  const body = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: nginx.port, path: '/', headers: { host: 'admin.localhost' } }, r => {
      let s = ''
      r.on('data', (d: Buffer) => { s += d.toString() })
      r.on('end', () => resolve(s))
    })
    req.on('error', reject)
    req.end()
  })
  t.same(JSON.parse(body), { admin: true, host: 'admin.localhost' })
})

t.test('TLS at nginx: X-Forwarded-Proto https is believed only from TRUSTED_PROXIES', async t => {
  const dir = t.testdir({})
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'nginx.key'), '-out', path.join(dir, 'nginx.crt')], { stdio: 'ignore' })
  // This process's fetch (the scripted browser) trusts the test certificate.
  setGlobalDispatcher(new Agent({ connect: { ca: readFileSync(path.join(dir, 'nginx.crt')) } }))

  const protoSeen = async (trusted: boolean): Promise<unknown> => {
    const { lc, publicUrl, cookie } = await edge(t, { trusted, tls: { dir } })
    t.match(publicUrl, /^https:/)
    const res = await fetch(`${publicUrl}/headers`, { headers: { cookie, accept: 'application/json' } })
    t.equal(res.status, 200)
    await res.arrayBuffer()
    return lc.requests.find(r => r.url === '/headers')?.headers['x-forwarded-proto']
  }
  t.equal(await protoSeen(true), 'https', 'with TRUSTED_PROXIES=127.0.0.1 LibreChat learns the user came over https')
  t.equal(await protoSeen(false), 'http', 'without it the gateway ignores nginx\'s header and reports its own connection')
})
