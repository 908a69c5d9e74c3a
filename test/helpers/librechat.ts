// A LibreChat-shaped upstream for the proxying tests, with the hooks a test needs to observe
// streaming exactly: an SSE route that writes its next event only when the test says the
// previous one arrived, WebSockets that echo and report their upgrade headers, large bodies
// both ways, and Set-Cookie on every status.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { Browser, signIn } from './browser.js'
import { startStack, type Stack } from './stack.js'

export interface LibreChatStandIn {
  url: string
  /** Resolves the next SSE write; a test calls it after receiving the previous event. */
  nextEvent: () => void
  /** Resolves when the upstream sees its SSE response closed by the gateway. */
  streamClosed: Promise<void>
  requests: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>
  uploadedBytes: number[]
  close: () => Promise<void>
}

const CHUNK = Buffer.alloc(64 * 1024, 120)

export async function startLibreChat (): Promise<LibreChatStandIn> {
  const requests: LibreChatStandIn['requests'] = []
  const uploadedBytes: number[] = []
  let release: (() => void) | undefined
  let closedResolve: () => void = () => {}
  const streamClosed = new Promise<void>(resolve => { closedResolve = resolve })

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/health') { res.end('OK'); return }
    if (url.pathname.startsWith('/api/agents/chat/stream/')) {
      // ?accel=omit: without LibreChat's X-Accel-Buffering (what a proxy must handle on its own).
      const head: Record<string, string> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' }
      if (url.searchParams.get('accel') === 'omit') delete head['x-accel-buffering']
      res.writeHead(200, head)
      res.on('close', () => closedResolve())
      let n = 0
      const write = (): void => {
        if (res.destroyed) return
        res.write(`data: {"n":${n}}\n\n`)
        n++
        if (n === 5) { res.end(); return }
        release = write
      }
      write()
      return
    }
    if (url.pathname === '/api/files' && req.method === 'POST') {
      let bytes = 0
      req.on('data', (d: Buffer) => { bytes += d.length })
      req.on('end', () => { uploadedBytes.push(bytes); res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes })) })
      return
    }
    if (url.pathname === '/api/files/download') {
      const total = Number(url.searchParams.get('bytes') ?? '0')
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) })
      let sent = 0
      const pump = (): void => {
        while (sent < total) {
          const piece = CHUNK.subarray(0, Math.min(CHUNK.length, total - sent))
          sent += piece.length
          if (!res.write(piece)) { res.once('drain', pump); return }
        }
        res.end()
      }
      pump()
      return
    }
    if (url.pathname === '/cookies') {
      const status = Number(url.searchParams.get('status') ?? '200')
      const headers: Record<string, string | string[]> = {
        'set-cookie': ['refreshToken=r1; Path=/; HttpOnly; Secure; SameSite=Strict', 'token_provider=openid; Path=/', 'openid_user_id=u1; Path=/; HttpOnly'],
        'content-type': 'application/json'
      }
      if (status >= 300 && status < 400) headers.location = '/c/new'
      res.writeHead(status, headers).end(JSON.stringify({ status }))
      return
    }
    if (url.pathname === '/api/auth/logout' && req.method === 'POST') {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'refreshToken=; Path=/; Max-Age=0' }).end('{"message":"Logout successful"}')
      return
    }
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }))
  })

  const wss = new WebSocketServer({ server })
  wss.on('connection', (socket, req) => {
    socket.send(JSON.stringify({ headers: req.headers }))
    socket.on('message', data => socket.send(`echo:${String(data)}`))
  })

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    nextEvent: () => { const r = release; release = undefined; r?.() },
    streamClosed,
    requests,
    uploadedBytes,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

export interface LibreChatStack { stack: Stack, lc: LibreChatStandIn, browser: Browser, cookie: string, port: number }

/** The gateway in front of a LibreChat stand-in, with alice signed in (her cookie ready to send). */
export async function stackWithLibreChat (env: Record<string, string> = {}): Promise<LibreChatStack> {
  const lc = await startLibreChat()
  const stack = await startStack({ upstream: { url: lc.url, requests: lc.requests as never, close: lc.close }, env })
  const close = stack.close
  stack.close = async () => { await close(); await lc.close() }
  const browser = new Browser()
  await signIn(browser, `${stack.url}/c/new`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  return { stack, lc, browser, cookie, port: Number(new URL(stack.url).port) }
}
