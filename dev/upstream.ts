/**
 * A demo upstream standing in for LibreChat: enough surface for the gateway's tests and demo
 * (health check, header echo, SSE chat stream, logout, uploads) without Mongo and friends.
 */
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose'
import { listen } from './http.js'

export interface UpstreamRequest {
  method: string
  url: string
  headers: Record<string, string | string[] | undefined>
  /** Set on SSE requests: true when the client went away before the stream ended. */
  streamAborted?: boolean
}

export interface Upstream {
  url: string
  port: number
  /** Every request received, in order (tests assert on forwarded headers here). */
  requests: UpstreamRequest[]
  close(): Promise<void>
}

/** How the chat stream is paced: the tests' default is quick, the demo's slow enough to watch. */
export interface SseShape { events: number, intervalMs: number }
const SSE_DEFAULT: SseShape = { events: 5, intervalMs: 50 }

export interface UpstreamOptions {
  host?: string
  port?: number
  sse?: SseShape
  /** The gateway's origin, whose /oauth2/jwks.json checks the identity JWT; default: from X-Forwarded-Proto/-Host. */
  gatewayUrl?: string
}

export async function startUpstream (opts: UpstreamOptions = {}): Promise<Upstream> {
  const host = opts.host ?? '127.0.0.1'
  const requests: UpstreamRequest[] = []
  const sse = opts.sse ?? SSE_DEFAULT
  const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>()
  let self = ''

  const server = http.createServer((req, res) => {
    const record: UpstreamRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers } }
    requests.push(record)
    handle(req, res, record, { sse, self, gatewayUrl: opts.gatewayUrl, keySets }).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) })
      else res.destroy()
    })
  })

  const url = await listen(server, host, opts.port)
  self = url
  const port = Number(new URL(url).port)

  return {
    url,
    port,
    requests,
    close: () => new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()))
      // Pooled keep-alive sockets and open SSE streams would otherwise keep close() pending.
      server.closeAllConnections()
    })
  }
}

interface Context { sse: SseShape, self: string, gatewayUrl: string | undefined, keySets: Map<string, ReturnType<typeof createRemoteJWKSet>> }

async function handle (req: IncomingMessage, res: ServerResponse, record: UpstreamRequest, ctx: Context): Promise<void> {
  const method = req.method ?? 'GET'
  const path = new URL(req.url ?? '/', 'http://upstream.invalid').pathname

  if (method !== 'GET' && method !== 'HEAD') {
    // Consume the whole body (uploads may be tens of MB) and report its size, so tests can
    // check that the gateway streamed it through unchanged.
    const bytes = await drain(req)
    if (method === 'POST' && path === '/api/auth/logout') {
      // LibreChat clears its own refresh cookie on logout; the gateway must pass this through.
      sendJson(res, 200, { message: 'Logout successful' }, { 'Set-Cookie': 'refreshToken=; Path=/; Max-Age=0; HttpOnly' })
      return
    }
    sendJson(res, 200, { bytes })
    return
  }

  if (path === '/health') {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' })
    res.end('OK')
    return
  }
  if (path === '/stream' && wantsHtml(req)) {
    sendHtml(res, streamPage(ctx.sse), STREAM_SCRIPT_HASH)
    return
  }
  if (path === '/stream' || /^\/api\/agents\/chat\/stream\/[^/]+$/.test(path)) {
    stream(req, res, record, ctx.sse)
    return
  }
  const echo = { method, url: req.url ?? '/', headers: req.headers }
  if (path !== '/headers' && wantsHtml(req)) {
    const token = header(req.headers, 'x-forwarded-identity')
    const jwt = token === undefined ? undefined : await viewJwt(token, gatewayOrigin(req.headers, ctx.gatewayUrl), new URL(ctx.self).origin, ctx.keySets)
    sendHtml(res, identityPage(echo, jwt, ctx.sse))
    return
  }
  sendJson(res, 200, echo)
}

/** Like LibreChat's chat stream: SSE, unbuffered, ends by itself after a few events. */
function stream (req: IncomingMessage, res: ServerResponse, record: UpstreamRequest, sse: SseShape): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    'X-Accel-Buffering': 'no'
  })
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  res.flushHeaders()
  let n = 0
  const send = (): void => {
    res.write(`data: ${JSON.stringify({ n, t: Date.now() })}\n\n`)
    n += 1
    if (n >= sse.events) {
      clearInterval(timer)
      res.end()
    }
  }
  const timer = setInterval(send, sse.intervalMs)
  // A client that goes away must stop the "generation", as in LibreChat.
  res.on('close', () => {
    clearInterval(timer)
    if (n < sse.events) record.streamAborted = true
  })
  send()
}

function wantsHtml (req: IncomingMessage): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html')
}

/** Identity headers are sent RFC 8187 style (`UTF-8''%C3%85...`) when not ASCII: show them decoded. */
function decodeHeaderValue (value: string): string {
  const m = /^UTF-8''(.*)$/i.exec(value)
  if (!m) return value
  try {
    return decodeURIComponent(m[1] ?? '')
  } catch {
    return value
  }
}

/** A comma list of identity values, each decoded on its own (an item with a comma is encoded). */
function decodeList (value: string | undefined): string[] {
  if (value === undefined || value === '') return []
  return value.split(',').map(v => decodeHeaderValue(v.trim())).filter(v => v !== '')
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const v = headers[name]
  return Array.isArray(v) ? v.join(', ') : v
}

/** Where the identity JWT's keys are: the gateway in front, as it told us (only it reaches us). */
function gatewayOrigin (headers: IncomingHttpHeaders, configured: string | undefined): string | undefined {
  if (configured !== undefined) return configured
  const proto = header(headers, 'x-forwarded-proto')
  const host = header(headers, 'x-forwarded-host')
  return proto !== undefined && host !== undefined ? `${proto}://${host}` : undefined
}

interface JwtView { header: unknown, claims: unknown, verdict: string, valid: boolean }

/** The identity JWT decoded, and checked against the gateway's published keys. */
async function viewJwt (token: string, gateway: string | undefined, audience: string, keySets: Map<string, ReturnType<typeof createRemoteJWKSet>>): Promise<JwtView> {
  let headerPart: unknown
  let claims: unknown
  try {
    headerPart = decodeProtectedHeader(token)
    claims = decodeJwt(token)
  } catch {
    return { header: null, claims: null, verdict: 'not a JWT', valid: false }
  }
  if (gateway === undefined) return { header: headerPart, claims, verdict: 'not checked: no gateway origin known', valid: false }
  let keys = keySets.get(gateway)
  if (keys === undefined) {
    keys = createRemoteJWKSet(new URL('/oauth2/jwks.json', gateway))
    keySets.set(gateway, keys)
  }
  try {
    await jwtVerify(token, keys, { issuer: gateway, audience })
    return { header: headerPart, claims, verdict: `signature valid (keys from ${gateway}/oauth2/jwks.json)`, valid: true }
  } catch (err) {
    return { header: headerPart, claims, verdict: `NOT valid: ${err instanceof Error ? err.message : String(err)}`, valid: false }
  }
}

const TOKEN_HEADERS = new Set(['x-forwarded-identity', 'x-forwarded-access-token'])

function shorten (value: string): string {
  return value.length > 48 ? `${value.slice(0, 24)}…${value.slice(-12)}` : value
}

/** The showcase: who the gateway says this is, the headers as received, the identity JWT checked. */
function identityPage (echo: { method: string, url: string, headers: IncomingHttpHeaders }, jwt: JwtView | undefined, sse: SseShape): string {
  const h = echo.headers
  const name = decodeHeaderValue(header(h, 'x-forwarded-name') ?? '')
  const email = decodeHeaderValue(header(h, 'x-forwarded-email') ?? '')
  const user = header(h, 'x-forwarded-user')
  const chips = (items: string[], none: string): string => items.length === 0
    ? `<span class="none">${none}</span>`
    : items.map(i => `<span class="chip">${escapeHtml(i)}</span>`).join(' ')
  const card = user === undefined
    ? '<section id="card" class="card"><h2>No identity</h2><p>This request reached the upstream without identity headers (a public path, or not through the gateway).</p></section>'
    : `<section id="card" class="card" aria-label="Signed-in user">
<p class="name" id="card-name">${escapeHtml(name || user)}</p>
<p class="email" id="card-email">${escapeHtml(email)}</p>
<dl>
<dt>Tenant</dt><dd id="card-tenant"><code>${escapeHtml(header(h, 'x-forwarded-tenant-id') ?? '')}</code></dd>
<dt>Roles</dt><dd id="card-roles">${chips(decodeList(header(h, 'x-forwarded-roles')), 'no app roles')}</dd>
<dt>Groups</dt><dd id="card-groups">${chips(decodeList(header(h, 'x-forwarded-groups')), 'no groups')}${header(h, 'x-forwarded-groups-truncated') === 'true' ? ' <span class="none">(truncated)</span>' : ''}</dd>
</dl>
</section>`

  const rows = Object.entries(h)
    .filter(([n]) => n.startsWith('x-forwarded-'))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, value]) => {
      const raw = Array.isArray(value) ? value.join(', ') : (value ?? '')
      const shown = TOKEN_HEADERS.has(n)
        ? `<details><summary><code>${escapeHtml(shorten(raw))}</code> <span class="show">show</span></summary><code class="long">${escapeHtml(raw)}</code></details>`
        : escapeHtml(decodeHeaderValue(raw))
      const asSent = raw !== decodeHeaderValue(raw) ? `<div class="sent">as sent: <code>${escapeHtml(raw)}</code></div>` : ''
      return `<tr><th scope="row">${escapeHtml(n)}</th><td><span class="value">${shown}</span>${asSent}</td></tr>`
    })
    .join('\n')

  const jwtSection = jwt === undefined
    ? ''
    : `<section id="identity-jwt">
<h2>The identity JWT, decoded</h2>
<p id="jwt-verdict" class="${jwt.valid ? 'ok' : 'bad'}">${jwt.valid ? '✔ ' : '✘ '}${escapeHtml(jwt.verdict)}</p>
<div class="jwt"><div><h3>Header</h3><pre>${escapeHtml(JSON.stringify(jwt.header, null, 2))}</pre></div>
<div><h3>Claims</h3><pre id="jwt-claims">${escapeHtml(JSON.stringify(jwt.claims, null, 2))}</pre></div></div>
</section>`

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Demo upstream (stands in for LibreChat)</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
<h1>Demo upstream</h1>
<p class="lead">This page stands in for LibreChat. It shows what the gateway told it about you, for <code>${escapeHtml(echo.method)} ${escapeHtml(echo.url)}</code>.</p>
${card}
<nav class="actions" aria-label="Try">
<a id="stream-link" href="/stream">Watch a chat reply stream</a>
<a id="userinfo-link" href="/oauth2/userinfo">What the gateway knows (/oauth2/userinfo)</a>
<a id="sign-out-link" href="/oauth2/sign_out">Sign out</a>
</nav>
<h2>Headers received</h2>
<table id="identity">
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="2">No X-Forwarded-* headers were received.</td></tr>'}
</tbody>
</table>
${jwtSection}
<p class="small">The stream sends ${sse.events} events ${sse.intervalMs} ms apart, as a chat reply would arrive.</p>
</main>
</body>
</html>`
}

/**
 * The stream made visible: a page whose one script opens an EventSource on the chat-stream
 * route and appends each event as it arrives (the script is allowed by its hash, nothing else).
 */
function streamPage (sse: SseShape): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Streaming reply · demo upstream</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
<h1>A streamed reply</h1>
<p class="lead">Server-sent events from the upstream, through the gateway, ${sse.events} events ${sse.intervalMs} ms apart. Each line appears when its event arrives: nothing is buffered on the way.</p>
<p id="stream-status" role="status">connecting…</p>
<ol id="events"></ol>
<nav class="actions"><a href="/">Back</a><a href="/oauth2/sign_out">Sign out</a></nav>
</main>
<script>${STREAM_SCRIPT}</script>
</body>
</html>`
}

const STREAM_SCRIPT = "const list=document.getElementById('events');const status=document.getElementById('stream-status');const t0=performance.now();const src=new EventSource('/api/agents/chat/stream/demo');src.onopen=()=>{status.textContent='streaming…'};src.onmessage=e=>{const d=JSON.parse(e.data);const li=document.createElement('li');li.textContent='event '+d.n+' after '+Math.round(performance.now()-t0)+' ms';list.appendChild(li)};src.onerror=()=>{src.close();status.textContent='done: '+list.children.length+' events'}"
const STREAM_SCRIPT_HASH = `'sha256-${createHash('sha256').update(STREAM_SCRIPT).digest('base64')}'`

const PAGE_CSS = `:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#5c5c5c;--line:#d6d6d6;--card:#f4f6fa;--accent:#0a5ad4;--ok:#17663a;--bad:#a4262c}
@media (prefers-color-scheme:dark){:root{--bg:#15171a;--fg:#e8e8e8;--muted:#a8a8a8;--line:#3a3d42;--card:#1f2328;--accent:#6ea8ff;--ok:#5fd28f;--bad:#ff7b81}}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,sans-serif}
main{max-width:60rem;margin:0 auto;padding:1.25rem}h1{margin:.2rem 0 .5rem}h2{margin-top:1.75rem}
.lead,.small,.none,.sent{color:var(--muted)}.small,.sent{font-size:.85rem}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem;overflow-wrap:anywhere;word-break:break-word;white-space:pre-wrap}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1rem 1.25rem;max-width:34rem}
.card .name{font-size:1.3rem;font-weight:600;margin:0}.card .email{margin:0 0 .5rem;color:var(--muted)}
.card dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .9rem;margin:0}.card dt{color:var(--muted)}.card dd{margin:0;min-width:0}
.chip{display:inline-block;border:1px solid var(--line);border-radius:999px;padding:0 .55rem;font-size:.85rem;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;margin:1rem 0}a{color:var(--accent)}
table{border-collapse:collapse;width:100%;table-layout:fixed}th,td{border-bottom:1px solid var(--line);padding:.45rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
thead th:first-child,tbody th{width:34%}tbody th{font-weight:500;font-family:ui-monospace,monospace;font-size:.85rem}
summary{cursor:pointer}.show{color:var(--accent);font-size:.8rem}.long{display:block;margin-top:.35rem}
.jwt{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1rem}.jwt pre{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem;margin:0}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
@media (max-width:600px){thead th:first-child,tbody th{width:40%}main{padding:.9rem}}`

function sendHtml (res: ServerResponse, html: string, scriptHash?: string): void {
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    // No script but the stream page's own, allowed by its hash; its EventSource is same-origin.
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'${scriptHash !== undefined ? `; script-src ${scriptHash}; connect-src 'self'` : ''}`
  })
  res.end(html)
}

function sendJson (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
  res.end(JSON.stringify(body))
}

function drain (req: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => resolve(bytes))
    req.on('error', reject)
  })
}

function escapeHtml (value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
