// Proxying: every request that is not one of the gateway's own routes goes to the upstream,
// streamed both ways, after the gate. Registered encapsulated, so its catch-all routes and
// pass-through body parsers do not leak into the gateway's own routes.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'

type ProxyOptions = Parameters<typeof httpProxy>[1]
import proxyAddr from '@fastify/proxy-addr'
import type { IncomingHttpHeaders } from 'node:http'
import type { GatewayConfig } from '../config.js'
import { upstreamHeaders } from './headers.js'

export default async function proxyPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const trust = proxyAddr.compile(config.trustedProxies)
  const cookieName = config.cookieName

  type ReplyOptions = NonNullable<FastifyHttpProxyOptions['replyOptions']>
  const rewriteRequestHeaders: NonNullable<ReplyOptions['rewriteRequestHeaders']> = (request, headers) => {
    const peer = request.socket.remoteAddress ?? ''
    return upstreamHeaders(headers as IncomingHttpHeaders, cookieName, {
      peer,
      trusted: config.trustedProxies.length > 0 && trust(peer, 0),
      protocol: request.protocol,
      host: request.headers.host
    }, request.forward)
  }

  const onError: NonNullable<ReplyOptions['onError']> = (reply, { error }) => {
    // reply-from wraps the socket's error (FST_REPLY_FROM_INTERNAL_SERVER_ERROR): log the cause's code.
    const cause = (error as { cause?: unknown }).cause
    const failure = (cause instanceof Error ? cause : error) as Error & { code?: string }
    reply.request.log.warn({ event: 'upstream_error', err: { message: failure.message, code: failure.code } }, 'upstream request failed')
    reply.problem({
      status: 502,
      error: 'upstream_unavailable',
      message: 'The application behind the gateway is not answering.',
      page: { title: 'The application is not answering', body: '<p>You are signed in, but the application behind the gateway is not answering right now. Please try again in a moment.</p>' }
    })
  }

  // WebSocket upgrades pass the same gate; their upstream headers are built here, because
  // replyOptions.rewriteRequestHeaders does not apply to them.
  const wsHeaders = (_base: Record<string, unknown>, request: FastifyRequest): Record<string, string> => {
    const peer = request.socket.remoteAddress ?? ''
    const picked: IncomingHttpHeaders = {}
    for (const name of ['cookie', 'authorization', 'origin', 'user-agent', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']) {
      const v = request.headers[name]
      if (typeof v === 'string') picked[name] = v
    }
    return upstreamHeaders(picked, cookieName, { peer, trusted: config.trustedProxies.length > 0 && trust(peer, 0), protocol: request.protocol, host: request.headers.host }, request.forward) as Record<string, string>
  }

  // @fastify/reply-from logs every upstream failure itself ('response errored', whatever
  // disableRequestLogging says) right before it calls onError above, which logs the same failure
  // as `upstream_error`: its line is dropped, for this context's requests only.
  app.setChildLoggerFactory(function (logger, bindings, childOpts) {
    const child = logger.child(bindings, childOpts)
    const warn = child.warn.bind(child) as (...args: unknown[]) => void
    child.warn = ((...args: unknown[]) => { if (args[1] !== 'response errored') warn(...args) }) as typeof child.warn
    return child
  })

  const options: ProxyOptions = {
    upstream: config.upstreamUrl,
    // The gate is an async hook, which Fastify supports; the plugin's type only names the callback form.
    preHandler: app.gate as unknown as FastifyHttpProxyOptions['preHandler'],
    // Location headers from the upstream are passed as they are.
    internalRewriteLocationHeader: false,
    disableRequestLogging: true,
    replyOptions: { rewriteRequestHeaders, onError },
    websocket: true,
    // The plugin reads rewriteRequestHeaders here at run time; its types omit it.
    wsClientOptions: { rewriteRequestHeaders: wsHeaders } as never,
    undici: {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      // Chat replies stream for minutes; a body or header timeout would cut them.
      bodyTimeout: 0,
      headersTimeout: 0
    }
  }
  await app.register(httpProxy, options)

  if (config.metricsPort !== undefined) {
    // Open SSE streams, for the metrics: counted when the stream starts, until its socket closes.
    app.addHook('onSend', async (_request, reply, payload) => {
      const type = reply.getHeader('content-type')
      if (typeof type === 'string' && type.startsWith('text/event-stream')) {
        app.metrics.sseOpen.inc()
        reply.raw.once('close', () => app.metrics.sseOpen.dec())
      }
      return payload
    })
  }

  // Logging out of the app means out of the gateway too: when the upstream accepts one of
  // LOGOUT_PATHS (LibreChat: POST /api/auth/logout), the gateway session ends with it.
  if (config.logoutPaths.length > 0) {
    const logoutRoutes = new Set(config.logoutPaths.map(l => `${l.method} ${l.path}`))
    app.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode < 200 || reply.statusCode >= 300 || request.session.user === undefined) return payload
      const q = request.url.indexOf('?')
      if (!logoutRoutes.has(`${request.method} ${q === -1 ? request.url : request.url.slice(0, q)}`)) return payload
      await app.signOut.endSession(request, reply, 'upstream_logout')
      return payload
    })
  }
}
