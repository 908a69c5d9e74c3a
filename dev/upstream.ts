/**
 * A demo upstream standing in for LibreChat: enough surface for the gateway's tests and demo
 * (health check, header echo, SSE chat stream, logout, uploads) without Mongo and friends.
 */
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
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

const SSE_EVENTS = 5
const SSE_INTERVAL_MS = 50

export async function startUpstream (opts: { host?: string, port?: number } = {}): Promise<Upstream> {
  const host = opts.host ?? '127.0.0.1'
  const requests: UpstreamRequest[] = []

  const server = http.createServer((req, res) => {
    const record: UpstreamRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers } }
    requests.push(record)
    handle(req, res, record).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(err) })
      else res.destroy()
    })
  })

  const url = await listen(server, host, opts.port)
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

async function handle (req: IncomingMessage, res: ServerResponse, record: UpstreamRequest): Promise<void> {
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
  if (path === '/stream' || /^\/api\/agents\/chat\/stream\/[^/]+$/.test(path)) {
    stream(req, res, record)
    return
  }
  const echo = { method, url: req.url ?? '/', headers: req.headers }
  if (path !== '/headers' && wantsHtml(req)) {
    sendHtml(res, identityPage(echo))
    return
  }
  sendJson(res, 200, echo)
}

/** Like LibreChat's chat stream: SSE, unbuffered, ends by itself after a few events. */
function stream (req: IncomingMessage, res: ServerResponse, record: UpstreamRequest): void {
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
    if (n >= SSE_EVENTS) {
      clearInterval(timer)
      res.end()
    }
  }
  const timer = setInterval(send, SSE_INTERVAL_MS)
  // A client that goes away must stop the "generation", as in LibreChat.
  res.on('close', () => {
    clearInterval(timer)
    if (n < SSE_EVENTS) record.streamAborted = true
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

function identityPage (echo: { method: string, url: string, headers: IncomingMessage['headers'] }): string {
  const rows = Object.entries(echo.headers)
    .filter(([name]) => name.startsWith('x-forwarded-'))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => {
      const raw = Array.isArray(value) ? value.join(', ') : (value ?? '')
      const shown = decodeHeaderValue(raw)
      return `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(shown)}</td><td><code>${escapeHtml(raw)}</code></td></tr>`
    })
    .join('\n')
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo upstream (stands in for LibreChat)</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}code{word-break:break-all}</style>
</head>
<body>
<main>
<h1>Demo upstream</h1>
<p>Served by the demo upstream for <code>${escapeHtml(echo.method)} ${escapeHtml(echo.url)}</code></p>
<h2>Identity headers received</h2>
<table id="identity">
<thead><tr><th scope="col">Header</th><th scope="col">Value</th><th scope="col">As sent</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="3">No X-Forwarded-* headers were received.</td></tr>'}
</tbody>
</table>
<section id="streaming">
<h2>Streaming</h2>
<p><a id="stream-link" href="/stream">Open a server-sent event stream</a> (${SSE_EVENTS} events, ${SSE_INTERVAL_MS} ms apart).</p>
</section>
</main>
</body>
</html>`
}

function sendHtml (res: ServerResponse, html: string): void {
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    // The page has no scripts; keep it that way.
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'"
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
