// The gate every proxied request passes: complete a pending sign-in at the callback, let
// public paths through, establish who is asking (auth/authenticate.ts), send the
// unauthenticated to sign in, and refuse the unauthorized in plain words. What reaches the
// upstream about the user is built from `request.principal` at the proxy edge.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decide, type Denied, type Subject } from '../policy/decide.js'
import { normalizePath, isPublic } from '../policy/rules.js'
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
  const hasRules = config.rules.rules.length > 0 || config.rules.publicPaths.length > 0

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

    let path: string | undefined
    if (hasRules) {
      path = normalizePath(url)
      if (path === undefined) {
        return reply.problem({ status: 400, error: 'bad_path', message: 'The address could not be understood.', page: { title: 'Bad request', body: '<p>The address could not be understood.</p>' } })
      }
      if (isPublic(config.rules, request.method, path)) {
        // No sign-in needed, and none started. A session's identity is forwarded only when it
        // is fresh and the policy would let this user in here; otherwise the request is anonymous.
        const auth = await app.authenticate(request, { refresh: false })
        if (auth.kind === 'principal' && !decide(config, auth.principal, { method: request.method, path }).allowed) {
          request.principal = undefined
          request.principalVia = undefined
        }
        return undefined
      }
    }

    const auth = await app.authenticate(request, { bearer: config.bearerAuth })
    switch (auth.kind) {
      case 'principal': {
        const decision = decide(config, auth.principal, path !== undefined ? { method: request.method, path } : undefined)
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

  app.decorate('gate', gate)
  app.decorate('deny', deny)
}

export default fp(gatePlugin, { name: 'gate', fastify: '5.x', dependencies: ['signin', 'pages', 'authenticate', 'metrics'] })
