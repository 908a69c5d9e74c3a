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
import { chooseRoute, type Route } from '../policy/routes.js'
import { namedOriginalRequest, originalRequest, trustedPeers, type OriginalRequest } from '../policy/original-request.js'
import { routeSiteFor, safeReturnPath } from '../policy/return-path.js'
import { upstreamIdentity } from '../proxy/identity.js'

const NO_STORE = { 'cache-control': 'no-store' }
const UPSTREAM_PREFIX = 'x-forwarded-'
const ANSWER_PREFIX = 'x-auth-request-'
/** What only a trusted proxy is handed: what would let its holder act as the user. */
const TOKEN_HEADERS = new Set(['x-forwarded-identity', 'x-forwarded-access-token', 'x-forwarded-access-token-expires-on'])

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
  const siteOf = (host: string | undefined): string => routeSiteFor(config.siteOrigins, config.publicOrigin, host) ?? ''
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

  // A check that names a request from a peer outside TRUSTED_PROXIES is judged as `GET /` (the
  // names are anybody's). Where rules or routes make the answer depend on the path, that is
  // most likely a proxy missing from TRUSTED_PROXIES, whose checks would all be judged as the
  // site root: said in the log, once per peer (bounded), so the mistake does not stay silent.
  const pathDependent = needsPath || hasRoutes
  const warnedPeers = new Set<string>()
  function warnUntrusted (request: FastifyRequest): void {
    const peer = request.socket.remoteAddress ?? ''
    if (warnedPeers.has(peer) || warnedPeers.size >= 1000) return
    warnedPeers.add(peer)
    request.log.warn({ event: 'forward_auth_untrusted', peer }, 'a forward-auth check named a request, but its sender is not in TRUSTED_PROXIES: judged as GET / (add the proxy to TRUSTED_PROXIES)')
  }

  async function check (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // The TCP peer decides whether the named request is believed, never request.ip (which
    // trustProxy derives from X-Forwarded-For).
    const trusted = fromTrustedProxy(request.socket.remoteAddress)
    if (!trusted && pathDependent && namedOriginalRequest(request.headers) !== undefined) warnUntrusted(request)
    const original: OriginalRequest | 'invalid' = originalRequest(request.headers, trusted)
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
        // The signed identity and the access token go only to the proxy in front, never to a
        // script of the page that can call this route with the browser's cookie.
        if (!trusted && TOKEN_HEADERS.has(key)) continue
        const name = answerName(key)
        if (name !== null) reply.header(name, identity[key] as string)
      }
    }
    return reply.send()
  }

  app.all('/oauth2/auth', check)
}
