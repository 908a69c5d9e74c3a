/**
 * A tiny forward proxy on loopback, standing in for a corporate egress proxy in the tests:
 * - `CONNECT host:port` (how https:// destinations are reached): answers 200 and tunnels bytes;
 * - absolute-form requests (`GET http://host:port/path`, how http:// destinations are reached):
 *   forwards them and streams the answer back;
 * - anything else (an origin-form request, as sent to a server rather than a proxy): 400.
 * Every request is recorded (method, `host:port`, path) before it is passed on, so a test can
 * tell which destinations went through it. Knobs: `credentials` ("user:password": anything
 * without that Basic Proxy-Authorization gets 407), `hosts` (names only this proxy resolves).
 */
import http from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'
import { listen } from './http.js'

export interface ProxiedRequest {
  method: string
  /** `host:port` as asked for. */
  target: string
  /** The path and query, for absolute-form requests; undefined for CONNECT. */
  path: string | undefined
}

export interface ConnectProxy {
  /** `http://127.0.0.1:port`. */
  url: string
  requests: ProxiedRequest[]
  /** Whether any request was for this `host:port`. */
  saw: (target: string) => boolean
  close: () => Promise<void>
}

export interface ConnectProxyOptions {
  /** "user:password" required as Basic Proxy-Authorization. */
  credentials?: string
  /** Host name → address, resolved here instead of by DNS. */
  hosts?: Record<string, string>
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

export async function startConnectProxy (opts: ConnectProxyOptions = {}): Promise<ConnectProxy> {
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Duplex>()
  const expected = opts.credentials !== undefined ? `Basic ${Buffer.from(opts.credentials).toString('base64')}` : undefined
  const address = (host: string): string => opts.hosts?.[host.toLowerCase()] ?? host
  const authorized = (req: http.IncomingMessage): boolean => expected === undefined || req.headers['proxy-authorization'] === expected
  const track = (s: Duplex): void => { sockets.add(s); s.once('close', () => sockets.delete(s)) }

  const server = http.createServer((req, res) => {
    let target: URL
    try {
      target = new URL(req.url ?? '')
    } catch {
      res.writeHead(400).end('this is a proxy: send absolute-form requests or CONNECT')
      return
    }
    if (target.protocol !== 'http:') {
      res.writeHead(400).end('absolute-form is for http:// targets; use CONNECT for https://')
      return
    }
    const port = Number(target.port || 80)
    requests.push({ method: req.method ?? 'GET', target: `${target.hostname}:${port}`, path: target.pathname + target.search })
    if (!authorized(req)) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="egress"' }).end()
      return
    }
    const headers: http.OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name)) headers[name] = value
    const upstream = http.request({ host: address(target.hostname), port, method: req.method, path: target.pathname + target.search, headers }, answer => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => { if (!res.headersSent) res.writeHead(502).end(); else res.destroy() })
    req.pipe(upstream)
  })

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    track(client)
    const m = /^(.+):(\d+)$/.exec(req.url ?? '')
    if (m === null) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n')
      return
    }
    const host = (m[1] as string).replace(/^\[|\]$/g, '')
    requests.push({ method: 'CONNECT', target: `${host}:${m[2] as string}`, path: undefined })
    if (!authorized(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\n\r\n')
      return
    }
    let connected = false
    const upstream = net.connect(Number(m[2]), address(host), () => {
      connected = true
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      if (head.length > 0) upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    track(upstream)
    upstream.on('error', () => { if (connected) client.destroy(); else client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n') })
    client.on('error', () => upstream.destroy())
  })
  server.on('connection', track)

  const url = await listen(server, '127.0.0.1', 0)
  return {
    url,
    requests,
    saw: (target: string) => requests.some(r => r.target === target),
    close: async () => {
      const closed = new Promise<void>(resolve => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      await closed
    }
  }
}
