// Proxying: every request that is not one of the gateway's own routes goes to the upstream,
// streamed both ways, after the gate. Registered encapsulated, so its catch-all routes and
// pass-through body parsers do not leak into the gateway's own routes.
import type { FastifyInstance } from 'fastify'
import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
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
    }, request.session.user?.forward)
  }

  const onError: NonNullable<ReplyOptions['onError']> = (reply, { error }) => {
    reply.request.log.warn({ event: 'upstream_error', err: { message: error.message, code: (error as { code?: string }).code } }, 'upstream request failed')
    reply.problem({
      status: 502,
      error: 'upstream_unavailable',
      message: 'The application behind the gateway is not answering.',
      page: { title: 'The application is not answering', body: '<p>You are signed in, but the application behind the gateway is not answering right now. Please try again in a moment.</p>' }
    })
  }

  const options: FastifyHttpProxyOptions = {
    upstream: config.upstreamUrl,
    // The gate is an async hook, which Fastify supports; the plugin's type only names the callback form.
    preHandler: app.gate as unknown as FastifyHttpProxyOptions['preHandler'],
    // Location headers from the upstream are passed as they are.
    internalRewriteLocationHeader: false,
    disableRequestLogging: true,
    replyOptions: { rewriteRequestHeaders, onError },
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
}
