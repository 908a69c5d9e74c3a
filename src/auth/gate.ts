// The gate every proxied request passes: complete a pending sign-in at the callback, choose the
// request's route (which upstream it goes to, once), let public paths through, establish who is
// asking (auth/authenticate.ts), send the unauthenticated to sign in, and refuse the
// unauthorized in plain words. What reaches the upstream about the user is built from
// `request.principal` at the proxy edge.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decideRouted, isPublicRequest, type Denied, type RequestFacts, type Subject } from '../policy/decide.js'
import { normalizePath } from '../policy/rules.js'
import { chooseRoute, type Route } from '../policy/routes.js'
import { isNavigation } from '../policy/request-kind.js'
import { safeReturnPath } from '../policy/return-path.js'
import { escapeHtml } from '../pages/render.js'
import { displayName, type Principal } from '../principal/principal.js'

declare module 'fastify' {
  interface FastifyInstance {
    gate: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
    /** The 403 for a principal that policy refused: logged, counted, explained. */
    /** `path`: the path judged, when it is not the request's own (a forward-auth check's original request). */
    deny: (request: FastifyRequest, reply: FastifyReply, principal: Principal, decision: Denied, path?: string) => FastifyReply
  }
  interface FastifyRequest {
    /** The route the gate chose for a proxied request; undefined: the default upstream (UPSTREAM_URL). */
    upstreamRoute: Route | undefined
  }
}

export function deniedBody (who: string, denied: Denied, subject: Subject, returnTo: string): string {
  const lacking = denied.reason === 'groups_unavailable'
    ? '<p>Your group membership could not be checked just now, so access cannot be confirmed. Please try again in a few minutes.</p>'
    : `<p>${denied.requiredRoles.length > 0 ? `Your account has ${subject.roles.length === 0 ? 'no roles' : `the roles ${escapeHtml(subject.roles.join(', '))}`} for this application.` : `Your account is in ${subject.groups.length} group${subject.groups.length === 1 ? '' : 's'}, none of them one that is required.`} Ask your administrator to give your account access, then sign in again.</p>`
  return `<p>You are signed in as <strong>${escapeHtml(who)}</strong>, but this application ${escapeHtml(denied.requirement)}.</p>
${lacking}
<div class="actions"><form method="post" action="/oauth2/sign_out"><button type="submit">Sign out</button></form>
<a href="/oauth2/start?prompt=select_account&amp;rd=${escapeHtml(encodeURIComponent(returnTo))}">Use a different account</a></div>`
}

async function gatePlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const callbackPath = config.callbackPath
  const routes = config.routes
  const hasRoutes = routes.all.length > 0
  // The path is normalized only when something matches on it: the hot path without rules or
  // path routes does no extra work.
  const needsPath = config.rules.rules.length > 0 || config.rules.publicPaths.length > 0 || routes.paths.length > 0
  const hasPublic = config.rules.publicPaths.length > 0
  const hasHostRoutes = routes.hosts.size > 0

  function deny (request: FastifyRequest, reply: FastifyReply, principal: Principal, decision: Denied, path?: string): FastifyReply {
    const who = displayName(principal)
    app.metrics.denials.inc({ reason: decision.reason })
    request.log.info({ event: 'denied', user: principal.userId, tenant: principal.tenantId, ip: request.ip, reason: decision.reason, requirement: decision.requirement, rule: decision.rule, authzError: principal.authzError, path: path ?? request.url.split('?', 1)[0] }, 'access denied')
    return reply.problem({
      status: 403,
      error: 'forbidden',
      message: `This application ${decision.requirement}.`,
      // Another account goes back where this one was refused (only a navigation's path is kept).
      page: { title: 'Access denied', body: deniedBody(who, decision, principal, request.method === 'GET' ? safeReturnPath(request.url) : '/') },
      json: { reason: decision.reason, required_roles: decision.requiredRoles, required_groups: decision.requiredGroups, signed_in_as: who }
    })
  }

  async function gate (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const url = request.url
    // Only origin-form targets are proxied: an absolute-form (`GET http://host/x`) or `*`
    // target names no path of this site.
    if (url.charCodeAt(0) !== 47) {
      return reply.problem({ status: 400, error: 'bad_request_target', message: 'The request target must be a path.', page: { title: 'Bad request', body: '<p>The address could not be understood.</p>' } })
    }
    if (request.method === 'GET' && url.startsWith(callbackPath) && (url.length === callbackPath.length || url[callbackPath.length] === '?')) {
      if (await app.signIn.handleCallback(request, reply)) return reply
    }

    // Read once: with TRUSTED_PROXIES each read of request.host runs the trust check.
    const host = hasHostRoutes ? request.host : undefined
    let facts: RequestFacts | undefined
    if (needsPath) {
      const path = normalizePath(url)
      if (path === undefined) {
        return reply.problem({ status: 400, error: 'bad_path', message: 'The address could not be understood.', page: { title: 'Bad request', body: '<p>The address could not be understood.</p>' } })
      }
      facts = { method: request.method, path, host }
    }
    // Chosen once, here: the decision below and the proxy after it read this one.
    let route: Route | undefined
    if (hasRoutes) {
      route = chooseRoute(routes, { path: facts?.path, host })
      request.upstreamRoute = route
    }
    if (hasPublic && facts !== undefined && isPublicRequest(config, facts, route)) {
      // No sign-in needed, and none started. A session's identity is forwarded only when it
      // is fresh and the policy would let this user in here; otherwise the request is anonymous.
      const auth = await app.authenticate(request, { refresh: false })
      if (auth.kind === 'principal' && !decideRouted(config, auth.principal, facts, route).allowed) {
        request.principal = undefined
        request.principalVia = undefined
      }
      return undefined
    }

    const auth = await app.authenticate(request, { bearer: config.bearerAuth })
    switch (auth.kind) {
      case 'principal': {
        const decision = decideRouted(config, auth.principal, facts, route)
        return decision.allowed ? undefined : deny(request, reply, auth.principal, decision)
      }
      case 'anonymous':
        return await app.signIn.requireSignIn(request, reply)
      case 'ended':
        if (isNavigation(request.method, request.headers)) return await app.signIn.requireSignIn(request, reply)
        return app.refuseAuthentication(reply, auth)
      case 'invalid_bearer':
        app.metrics.denials.inc({ reason: 'invalid_bearer' })
        request.log.info({ event: 'denied', reason: 'invalid_bearer', detail: auth.reason, ip: request.ip }, 'bearer token refused')
        return app.refuseAuthentication(reply, auth)
      default:
        return app.refuseAuthentication(reply, auth)
    }
  }

  app.decorateRequest('upstreamRoute', undefined)
  app.decorate('gate', gate)
  app.decorate('deny', deny)
}

export default fp(gatePlugin, { name: 'gate', fastify: '5.x', dependencies: ['signin', 'pages', 'authenticate', 'metrics'] })
