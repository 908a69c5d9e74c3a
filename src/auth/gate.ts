// The gate every proxied request passes: complete a pending sign-in at the callback, send
// the unauthenticated to sign in, refuse the unauthorized in plain words, let the rest through.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decide, type Denied } from '../policy/decide.js'
import { escapeHtml } from '../pages/render.js'
import type { SessionUser } from '../session/plugin.js'

declare module 'fastify' {
  interface FastifyInstance {
    gate: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>
  }
}

export function deniedBody (user: SessionUser, denied: Denied): string {
  const who = user.email ?? user.preferredUsername ?? user.name ?? user.userId
  return `<p>You are signed in as <strong>${escapeHtml(who)}</strong>, but this application ${escapeHtml(denied.requirement)}.</p>
<p>Ask your administrator to give your account access, then sign in again. If you meant to use another account, switch accounts.</p>
<div class="actions"><form method="post" action="/oauth2/sign_out"><button type="submit">Sign out</button></form>
<a href="/oauth2/sign_in?prompt=select_account">Use a different account</a></div>`
}

async function gatePlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const callbackPath = config.callbackPath

  async function gate (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    if (request.method === 'GET') {
      const url = request.url
      if (url.startsWith(callbackPath) && (url.length === callbackPath.length || url[callbackPath.length] === '?')) {
        if (await app.signIn.handleCallback(request, reply)) return reply
      }
    }
    const user = request.session.user
    if (user === undefined) return await app.signIn.requireSignIn(request, reply)

    const decision = decide(config, user)
    if (!decision.allowed) {
      request.log.info({ event: 'denied', user: user.userId, tenant: user.tenantId, reason: decision.reason, requirement: decision.requirement, path: request.url.split('?', 1)[0] }, 'access denied')
      return reply.problem({
        status: 403,
        error: 'forbidden',
        message: `This application ${decision.requirement}.`,
        page: { title: 'Access denied', body: deniedBody(user, decision) },
        json: { reason: decision.reason, required_roles: decision.requiredRoles }
      })
    }
    return undefined
  }

  app.decorate('gate', gate)
}

export default fp(gatePlugin, { name: 'gate', fastify: '5.x', dependencies: ['signin', 'pages'] })
