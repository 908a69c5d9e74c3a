// The gate every proxied request passes: complete a pending sign-in at the callback, let
// public paths through, accept an API bearer token, send the unauthenticated to sign in, keep
// the session fresh, and refuse the unauthorized in plain words.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decide, type Denied, type Subject } from '../policy/decide.js'
import { normalizePath, isPublic } from '../policy/rules.js'
import { isNavigation } from '../policy/request-kind.js'
import { escapeHtml, JSON_NO_STORE } from '../pages/render.js'

declare module 'fastify' {
  interface FastifyInstance {
    gate: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
  }
  interface FastifyRequest {
    /** Identity headers for this request (a session's or a bearer token's), set by the gate. */
    forward: Record<string, string> | undefined
  }
}

export function deniedBody (who: string, denied: Denied, subject: Subject): string {
  const lacking = denied.reason === 'groups_unavailable'
    ? '<p>Your group membership could not be checked just now, so access cannot be confirmed. Please try again in a few minutes.</p>'
    : `<p>${denied.requiredRoles.length > 0 ? `Your account has ${subject.roles.length === 0 ? 'no roles' : `the roles ${escapeHtml(subject.roles.join(', '))}`} for this application.` : `Your account is in ${subject.groups.length} group${subject.groups.length === 1 ? '' : 's'}, none of them one that is required.`} Ask your administrator to give your account access, then sign in again.</p>`
  return `<p>You are signed in as <strong>${escapeHtml(who)}</strong>, but this application ${escapeHtml(denied.requirement)}.</p>
${lacking}
<div class="actions"><form method="post" action="/oauth2/sign_out"><button type="submit">Sign out</button></form>
<a href="/oauth2/sign_in?prompt=select_account">Use a different account</a></div>`
}

async function gatePlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const callbackPath = config.callbackPath
  const hasRules = config.rules.rules.length > 0 || config.rules.publicPaths.length > 0

  app.decorateRequest('forward', undefined)

  /** The session's identity headers plus what needs its tokens or a signature. */
  async function sessionHeaders (request: FastifyRequest, base: Record<string, string>): Promise<Record<string, string>> {
    const extra: Record<string, string> = {}
    const identityJwt = await app.identity.tokenFor(request)
    if (identityJwt !== undefined) extra['x-forwarded-identity'] = identityJwt
    if (config.forwardAccessToken || config.forwardAuthorizationBearer) {
      const token = app.tokens.accessToken(request)
      if (token !== undefined) {
        if (config.forwardAccessToken) {
          extra['x-forwarded-access-token'] = token
          const exp = request.session.accessExp
          if (exp !== undefined) extra['x-forwarded-access-token-expires-on'] = String(exp)
        }
        if (config.forwardAuthorizationBearer) extra.authorization = `Bearer ${token}`
      }
    }
    return { ...base, ...extra }
  }

  function deny (request: FastifyRequest, reply: FastifyReply, who: string, user: { userId: string, tenantId?: string | undefined }, subject: Subject, decision: Denied): FastifyReply {
    app.metrics.denials.inc({ reason: decision.reason })
    request.log.info({ event: 'denied', user: user.userId, tenant: user.tenantId, ip: request.ip, reason: decision.reason, requirement: decision.requirement, rule: decision.rule, authzError: subject.authzError, path: request.url.split('?', 1)[0] }, 'access denied')
    return reply.problem({
      status: 403,
      error: 'forbidden',
      message: `This application ${decision.requirement}.`,
      page: { title: 'Access denied', body: deniedBody(who, decision, subject) },
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
        const user = request.session.user
        if (user !== undefined && !app.tokens.isDue(request) && decide(config, user, { method: request.method, path }).allowed) {
          request.forward = await sessionHeaders(request, user.forward)
        }
        return undefined
      }
    }

    if (config.bearerAuth) {
      const bearer = await app.bearer.authenticate(request)
      if (bearer.kind === 'invalid') {
        app.metrics.denials.inc({ reason: 'invalid_bearer' })
        request.log.info({ event: 'denied', reason: 'invalid_bearer', detail: bearer.reason, ip: request.ip }, 'bearer token refused')
        return reply.code(401).headers({ ...JSON_NO_STORE, 'www-authenticate': `Bearer error="invalid_token", error_description="${bearer.reason}"` })
          .send(JSON.stringify({ error: 'invalid_token', message: `The bearer token was refused: ${bearer.reason}.` }))
      }
      if (bearer.kind === 'valid') {
        const decision = decide(config, bearer.subject, path !== undefined ? { method: request.method, path } : undefined)
        if (!decision.allowed) return deny(request, reply, bearer.who, bearer.subject.identity, bearer.subject, decision)
        request.forward = bearer.forward
        return undefined
      }
    }

    if (request.session.user === undefined) return await app.signIn.requireSignIn(request, reply)
    const freshness = await app.tokens.ensureFresh(request)
    if (freshness === 'ended') {
      if (isNavigation(request.method, request.headers)) return await app.signIn.requireSignIn(request, reply)
      return reply.code(401).headers(JSON_NO_STORE).send(JSON.stringify({ error: 'session_expired', message: 'Your session has ended; sign in again.', login_url: `${config.publicOrigin}/oauth2/sign_in` }))
    }
    if (freshness === 'busy') {
      return reply.problem({ status: 503, error: 'renewal_in_progress', message: 'Your session is being renewed by another gateway instance, which has not finished; please try again.', page: { title: 'Session renewal in progress', body: '<p>Your session needs renewing, and that is already under way elsewhere but has not finished yet. Please try again in a moment.</p>' } })
    }
    if (freshness === 'unavailable') {
      return reply.problem({ status: 503, error: 'idp_unavailable', message: 'Your session could not be renewed because the sign-in service is not answering.', page: { title: 'Sign-in service unavailable', body: '<p>Your session needs renewing, but the sign-in service is not answering. Please try again in a minute.</p>' } })
    }
    const user = request.session.user
    if (user === undefined) return await app.signIn.requireSignIn(request, reply)

    const decision = decide(config, user, path !== undefined ? { method: request.method, path } : undefined)
    if (!decision.allowed) return deny(request, reply, user.email ?? user.preferredUsername ?? user.name ?? user.userId, user, user, decision)
    request.forward = await sessionHeaders(request, user.forward)
    return undefined
  }

  app.decorate('gate', gate)
}

export default fp(gatePlugin, { name: 'gate', fastify: '5.x', dependencies: ['signin', 'pages', 'tokens', 'bearer', 'identity'] })
