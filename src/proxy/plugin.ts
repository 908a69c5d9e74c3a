// Proxying: every request that is not one of the gateway's own routes goes to the upstream the
// gate chose for it (UPSTREAM_URL, or a route's), after the gate, through the proxy core
// (upstream.ts). Registered encapsulated, so its catch-all routes and its pass-through body
// parser do not reach the gateway's own routes.
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { upstreamRequestHeaders } from './headers.js'
import { upstreamIdentity } from './identity.js'
import { normalizePath } from '../policy/rules.js'
import { trustedPeers } from '../policy/original-request.js'
import { strippedTarget, type Route } from '../policy/routes.js'

/** An upgrade's socket and first bytes, parked on the raw request while the gate runs. */
const kUpgrade = Symbol('entra-gateway.upgrade')
type UpgradeRequest = IncomingMessage & { [kUpgrade]?: { socket: Duplex, head: Buffer } }

export default async function proxyPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const trusted = trustedPeers(config.trustedProxies)
  // The gateway's cookies never reach an upstream, host-only ones from before COOKIE_DOMAIN included.
  const cookieNames = [...new Set([config.cookieName, config.loginCookieName, ...Object.values(config.hostOnlyCookies ?? {})])]
  const logoutRoutes = new Set(config.logoutPaths.map(l => `${l.method} ${l.path}`))
  const logoutMethods = new Set(config.logoutPaths.map(l => l.method))

  // Bodies are streamed to the upstream as they arrive: never parsed, never limited.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  const identityFor = upstreamIdentity(app, config)
  const defaultAudience = new URL(config.upstreamUrl).origin

  async function headersFor (request: FastifyRequest, route: Route | undefined): Promise<string[]> {
    const peer = request.socket.remoteAddress ?? ''
    const headers = upstreamRequestHeaders(request.raw.rawHeaders, cookieNames, {
      peer,
      trusted: trusted(peer),
      protocol: request.protocol,
      host: request.headers.host
    }, await identityFor(request, route?.origin ?? defaultAudience))
    // The app behind a stripped prefix learns it, to build its links (a client's own was dropped).
    if (route?.stripPrefix === true) headers.push('x-forwarded-prefix', route.match)
    return headers
  }

  /**
   * Logging out of the app means out of the gateway too: when the upstream accepts one of
   * LOGOUT_PATHS (LibreChat: POST /api/auth/logout), the gateway session ends with it.
   */
  function logoutCoupling (request: FastifyRequest): ((status: number) => Promise<void>) | undefined {
    // LibreChat's own logout: the default upstream's, never a routed service's same-named path.
    if (!logoutMethods.has(request.method) || request.session?.user === undefined || request.upstreamRoute !== undefined) return undefined
    if (!logoutRoutes.has(`${request.method} ${normalizePath(request.url) ?? ''}`)) return undefined
    return async (status) => {
      if (status < 200 || status >= 300) return
      try {
        await app.signOut.endSession(request, 'upstream_logout')
      } catch (err) {
        // The app's logout stands either way; without the store the session is only abandoned.
        request.log.warn({ event: 'sign_out_incomplete', reason: 'upstream_logout', detail: (err as Error).message }, 'the session store did not answer at sign-out')
        request.session.abandon()
      }
    }
  }

  async function handler (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = request.raw as UpgradeRequest
    const parked = raw[kUpgrade]
    const route = request.upstreamRoute
    const path = route?.stripPrefix === true ? strippedTarget(route, request.url) : request.url
    if (path === undefined) {
      return reply.problem({ status: 400, error: 'bad_path', message: 'The address could not be understood.', page: { title: 'Bad request', body: '<p>The address could not be understood.</p>' } })
    }
    const f = { request, reply, route, path, headers: await headersFor(request, route), beforeHead: logoutCoupling(request) }
    if (parked === undefined) app.upstream.forward(f)
    else if (/^websocket$/i.test(String(request.headers.upgrade))) app.upstream.upgrade(f, parked.socket, parked.head)
    // Any other Upgrade (h2c, ...) is not ours to grant: an ordinary request, answered on the
    // socket Node handed over (its body, if any, is not read: Node stopped parsing there).
    else app.upstream.forward({ ...f, noBody: true })
    return reply
  }

  app.route({ method: ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'], url: '/*', preHandler: app.gate, handler })

  // Upgrades (WebSockets) are routed like any request, so they pass the same hooks and gate;
  // a refusal is written to the socket as an ordinary HTTP answer.
  app.server.on('upgrade', (req: UpgradeRequest, socket: Duplex, head: Buffer) => {
    // Node removed its own error listener when it handed the socket over: without one, a
    // client that resets the connection during the gate would crash the process.
    socket.on('error', () => { socket.destroy() })
    req[kUpgrade] = { socket, head }
    const res = new ServerResponse(req)
    res.assignSocket(socket as never)
    res.shouldKeepAlive = false
    res.once('finish', () => { if (!res.headersSent || res.statusCode !== 101) socket.end() })
    app.routing(req, res)
  })
}
