// /oauth2/auth: the gateway as the authentication step of a reverse proxy in front (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth). The proxy asks about one request;
// the answer is 202 with the identity in X-Auth-Request-* headers (which the proxy copies to
// its upstream), 401 without a session (JSON, never a redirect: nginx cannot pass one on, and
// its error_page hands navigations to /oauth2/sign_in), 403 when the policy refuses. Identity
// is established as for a proxied request (auth/authenticate.ts, tokens refreshed when due)
// and nothing is sent upstream. Registered encapsulated: bodies are not parsed here.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decideRouted, isPublicRequest, type RequestFacts } from '../policy/decide.js'
import { normalizePath } from '../policy/rules.js'
import { chooseRoute, normalizeHost, type Route } from '../policy/routes.js'
import { originalRequest, trustedPeers, type OriginalRequest } from '../policy/original-request.js'
import { safeReturnPath } from '../policy/return-path.js'
import { upstreamIdentity } from '../proxy/identity.js'

const NO_STORE = { 'cache-control': 'no-store' }
const UPSTREAM_PREFIX = 'x-forwarded-'
const ANSWER_PREFIX = 'x-auth-request-'

export default async function forwardAuthRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const hasRules = config.rules.rules.length > 0 || config.rules.publicPaths.length > 0
  // Routes (ROUTES) judge a forward-auth check as they judge a proxied request: the route's own
  // rules apply to the original path or host, and the identity JWT is for that route's upstream.
  const routes = config.routes
  const hasRoutes = routes.all.length > 0
  const needsPath = hasRules || routes.paths.length > 0
  const defaultAudience = new URL(config.upstreamUrl).origin
  // A sign-in asked for on a host route's site (COOKIE_DOMAIN) returns there: the site comes
  // from configuration, looked up by the host a trusted proxy named.
  const mainHost = config.publicOrigin === '' ? '' : new URL(config.publicOrigin).hostname
  const siteOf = (host: string | undefined): string => {
    const h = config.siteOrigins.size > 1 ? normalizeHost(host) : undefined
    return h === undefined || h === mainHost ? '' : config.siteOrigins.get(h) ?? ''
  }
  const fromTrustedProxy = trustedPeers(config.trustedProxies)
  const identityFor = upstreamIdentity(app, config)

  /**
   * The name a proxy copies for each header the gateway would send its own upstream:
   * X-Forwarded-User → X-Auth-Request-User (oauth2-proxy's names), and so for each one
   * proxy/identity.ts writes. Authorization (FORWARD_AUTHORIZATION_BEARER) is a request header
   * of the upstream's, not an answer's: left out. Each name is computed once.
   */
  const answerNames = new Map<string, string | null>()
  function answerName (upstreamName: string): string | null {
    let name = answerNames.get(upstreamName)
    if (name === undefined) {
      name = upstreamName.startsWith(UPSTREAM_PREFIX) ? ANSWER_PREFIX + upstreamName.slice(UPSTREAM_PREFIX.length) : null
      answerNames.set(upstreamName, name)
    }
    return name
  }

  // Proxies send no body (nginx: proxy_pass_request_body off); one that does is not read.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => { done(null) })

  const badRequest = (reply: FastifyReply): FastifyReply => reply.problem({ status: 400, error: 'bad_original_request', message: 'The proxy named an original request that could not be understood.', jsonOnly: true })

  async function check (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // The TCP peer decides whether the named request is believed, never request.ip (which
    // trustProxy derives from X-Forwarded-For).
    const original: OriginalRequest | 'invalid' = originalRequest(request.headers, fromTrustedProxy(request.socket.remoteAddress))
    if (original === 'invalid') return badRequest(reply)
    let facts: RequestFacts | undefined
    if (needsPath) {
      const path = normalizePath(original.url)
      if (path === undefined) return badRequest(reply)
      facts = { method: original.method, path, host: original.host }
    }
    const route: Route | undefined = hasRoutes ? chooseRoute(routes, { path: facts?.path, host: original.host }) : undefined
    // Public: no sign-in and no identity (the proxy passes the request on as it came).
    if (hasRules && facts !== undefined && isPublicRequest(config, facts, route)) return reply.code(202).headers(NO_STORE).send()

    const auth = await app.authenticate(request, { bearer: config.bearerAuth })
    if (auth.kind !== 'principal') {
      if (auth.kind === 'anonymous') {
        const loginUrl = `${config.publicOrigin}/oauth2/sign_in?rd=${encodeURIComponent(siteOf(original.host) + safeReturnPath(original.url))}`
        return reply.problem({ status: 401, error: 'unauthenticated', message: 'Sign in first.', jsonOnly: true, json: { login_url: loginUrl } })
      }
      return app.refuseAuthentication(reply, auth)
    }
    const decision = decideRouted(config, auth.principal, facts, route)
    if (!decision.allowed) return app.deny(request, reply, auth.principal, decision, original.url.split('?', 1)[0])

    const identity = await identityFor(request, route?.origin ?? defaultAudience)
    reply.code(202).headers(NO_STORE)
    if (identity !== undefined) {
      for (const key in identity) {
        const name = answerName(key)
        if (name !== null) reply.header(name, identity[key] as string)
      }
    }
    return reply.send()
  }

  app.all('/oauth2/auth', check)
}
