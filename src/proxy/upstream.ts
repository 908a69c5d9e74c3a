// The proxy core: undici used directly (the client Node itself ships), one request handler
// per proxied request, the response streamed to the client with backpressure. No body-size
// limit and no timeout on bodies or streams; a timeout only for the upstream's response
// headers (504). A client that goes away aborts its upstream request at once, so an
// abandoned chat stream frees its connection. The pool has no fixed cap on connections: a
// few hundred open chat streams must not queue the next request behind them; a bound on
// requests in flight (UPSTREAM_MAX_CONCURRENT) answers 503 at once instead. Every upstream
// (UPSTREAM_URL and each route's) gets its own pool and the same behaviour; the in-flight bound
// is the process's, shared by all of them, since what it protects is the gateway's sockets.
import type { Duplex } from 'node:stream'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { Pool, type Dispatcher } from 'undici'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Route } from '../policy/routes.js'
import { clientResponseHeaders } from './headers.js'

/** What the proxy route hands the core: the request, where to send it, and its headers. */
export interface Forward {
  request: FastifyRequest
  reply: FastifyReply
  /** The route chosen for it; undefined: the default upstream (UPSTREAM_URL). */
  route: Route | undefined
  /** The target sent upstream, after that upstream's base path: the client's, or without a strip_prefix route's prefix. */
  path: string
  /** The flat [name, value, ...] header list (see upstreamRequestHeaders). */
  headers: string[]
  /** Runs once the upstream's status is known, before the head is written (logout coupling); may change the session's cookie. */
  beforeHead?: (statusCode: number) => Promise<void>
  /** Send no body whatever the headers say (a request Node stopped parsing at an Upgrade). */
  noBody?: boolean
}

export interface Upstream {
  forward: (f: Forward) => void
  /** A WebSocket (or other) upgrade, the client's socket handed over after the gate. */
  upgrade: (f: Forward, socket: Duplex, head: Buffer) => void
  /** Ends every open WebSocket (the shutdown deadline: Node's closeAllConnections leaves upgraded sockets). */
  closeUpgraded: () => void
  /** Requests in flight right now, and whether new ones are being refused. */
  readonly inflight: number
  readonly saturated: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    upstream: Upstream
  }
}

class ClientGone extends Error {
  constructor () { super('the client went away'); this.name = 'ClientGone' }
}

function hasBody (request: FastifyRequest): boolean {
  const h = request.headers
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
}

function addCookie (headers: Record<string, string | string[]>, cookie: string | undefined): void {
  if (cookie === undefined) return
  const prior = headers['set-cookie']
  headers['set-cookie'] = prior === undefined ? cookie : Array.isArray(prior) ? [...prior, cookie] : [prior, cookie]
}

/** One upstream as the core sends to it: a pool per origin, and the base path of its URL. */
interface Target { pool: Pool, basePath: string }

async function upstreamPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const pools = new Map<string, Pool>()
  const targetOf = (url: string): Target => {
    const u = new URL(url)
    let pool = pools.get(u.origin)
    if (pool === undefined) {
      pool = new Pool(u.origin, {
        connections: null,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        headersTimeout: config.upstreamHeadersTimeoutSeconds * 1000,
        // Chat replies stream for minutes, with long pauses while the model thinks.
        bodyTimeout: 0,
        connect: { timeout: 10_000 }
      })
      pools.set(u.origin, pool)
    }
    return { pool, basePath: u.pathname === '/' ? '' : u.pathname }
  }
  const defaultTarget = targetOf(config.upstreamUrl)
  const routeTargets = new Map<Route, Target>(config.routes.all.map(r => [r, targetOf(r.upstreamUrl)]))
  // Every route comes from config.routes, so it has its target; never a silent fall back to the default upstream.
  const targetFor = (route: Route | undefined): Target => route === undefined ? defaultTarget : routeTargets.get(route) as Target
  app.addHook('onClose', async () => { await Promise.all([...pools.values()].map(async p => await p.destroy())) })
  const limit = config.upstreamMaxConcurrent
  const upgraded = new Set<Duplex>()
  let inflight = 0

  function fail (f: Forward, err: Error & { code?: string }): void {
    const { request, reply } = f
    if (err instanceof ClientGone) return
    const timeout = err.code === 'UND_ERR_HEADERS_TIMEOUT'
    // Logged once, here, with the error's code (never its request headers).
    request.log.warn({ event: 'upstream_error', err: { code: err.code, message: err.message }, route: f.route?.name, path: request.url.split('?', 1)[0] }, 'upstream request failed')
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy()
      return
    }
    if (timeout) {
      reply.problem({
        status: 504,
        error: 'upstream_timeout',
        message: 'The application behind the gateway did not answer in time.',
        page: { title: 'The application did not answer', body: '<p>You are signed in, but the application behind the gateway did not answer in time. Please try again in a moment.</p>' }
      })
      return
    }
    reply.problem({
      status: 502,
      error: 'upstream_unavailable',
      message: 'The application behind the gateway is not answering.',
      page: { title: 'The application is not answering', body: '<p>You are signed in, but the application behind the gateway is not answering right now. Please try again in a moment.</p>' }
    })
  }

  function busy (reply: FastifyReply): void {
    reply.header('retry-after', '5').problem({
      status: 503,
      error: 'gateway_busy',
      message: 'The gateway is handling as many requests as it may right now.',
      page: { title: 'Too busy right now', body: '<p>The gateway is handling as many requests as it may right now. Please try again in a moment.</p>' }
    })
  }

  function forward (f: Forward): void {
    const { request, reply } = f
    // Node may have refused the request meanwhile (a malformed body framing answers 400 and
    // closes the socket after the headers were read): such a request never goes upstream.
    if (request.raw.socket.destroyed) return
    if (inflight >= limit) { busy(reply); return }
    inflight++
    const res: ServerResponse = reply.raw
    let controller: Dispatcher.DispatchController | undefined
    let finished = false
    let sse = false
    const done = (): void => {
      if (finished) return
      finished = true
      inflight--
      if (sse) app.metrics.sseOpen.dec()
    }
    const onClose = (): void => {
      if (!finished) {
        done()
        controller?.abort(new ClientGone())
      }
    }
    res.once('close', onClose)
    const resume = (): void => { controller?.resume() }

    const writeHead = (statusCode: number, headers: Record<string, string | string[]>): void => {
      addCookie(headers, request.session?.setCookie)
      reply.hijack()
      res.writeHead(statusCode, headers)
    }

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart (c) {
        controller = c
        if (finished) c.abort(new ClientGone())
      },
      onResponseStart (c, statusCode, upstreamHeaders) {
        if (statusCode < 200) return
        const headers = clientResponseHeaders(upstreamHeaders as Record<string, string | string[] | undefined>)
        const type = headers['content-type']
        if (typeof type === 'string' && type.startsWith('text/event-stream')) {
          sse = true
          app.metrics.sseOpen.inc()
        }
        if (f.beforeHead === undefined) {
          writeHead(statusCode, headers)
          return
        }
        c.pause()
        f.beforeHead(statusCode).then(
          () => { writeHead(statusCode, headers); c.resume() },
          (err: Error) => { c.abort(err) }
        )
      },
      onResponseData (c, chunk) {
        if (!res.write(chunk)) {
          c.pause()
          res.once('drain', resume)
        }
      },
      onResponseEnd () {
        done()
        res.end()
      },
      onResponseError (_c, err) {
        done()
        fail(f, err)
      }
    }

    const { pool, basePath } = targetFor(f.route)
    pool.dispatch({
      method: request.method,
      path: basePath + f.path,
      headers: f.headers,
      body: f.noBody !== true && hasBody(request) ? request.raw : null
    }, handler)
  }

  function upgrade (f: Forward, socket: Duplex, head: Buffer): void {
    const { request, reply } = f
    const abort = new AbortController()
    const onClientClose = (): void => { abort.abort() }
    socket.once('close', onClientClose)
    const { pool, basePath } = targetFor(f.route)
    pool.upgrade({ method: request.method, path: basePath + f.path, headers: f.headers, protocol: String(request.headers.upgrade ?? 'websocket'), signal: abort.signal })
      .then(({ headers, socket: upstreamSocket }) => {
        socket.off('close', onClientClose)
        reply.hijack()
        if (socket.destroyed) { upstreamSocket.destroy(); return }
        socket.write(upgradeHead(headers, request.session?.setCookie))
        if (head.length > 0) upstreamSocket.write(head)
        upgraded.add(socket)
        socket.once('close', () => upgraded.delete(socket))
        upstreamSocket.on('error', () => socket.destroy())
        socket.on('error', () => upstreamSocket.destroy())
        upstreamSocket.on('close', () => socket.destroy())
        socket.on('close', () => upstreamSocket.destroy())
        upstreamSocket.pipe(socket)
        socket.pipe(upstreamSocket)
      }, (err: Error) => {
        socket.off('close', onClientClose)
        if (abort.signal.aborted) return
        fail(f, err)
      })
  }

  app.decorate('upstream', {
    forward,
    upgrade,
    closeUpgraded: () => { for (const s of upgraded) s.destroy() },
    get inflight () { return inflight },
    get saturated () { return inflight >= limit }
  })
}

/** The 101 answer to the client, from the upstream's headers (its Sec-WebSocket-Accept included). */
function upgradeHead (headers: IncomingHttpHeaders, cookie: string | undefined): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n'
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined) continue
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`
  }
  if (cookie !== undefined) head += `set-cookie: ${cookie}\r\n`
  return head + '\r\n'
}

export default fp(upstreamPlugin, { name: 'upstream', fastify: '5.x', dependencies: ['pages', 'metrics'] })
