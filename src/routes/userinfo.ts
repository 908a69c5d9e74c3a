// GET /oauth2/userinfo: the signed-in identity as the gateway sees it, with the authorization
// decision, for the app's front end and for people debugging access.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decide } from '../policy/decide.js'

export default async function userinfoRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  app.get('/oauth2/userinfo', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const user = request.session.user
    if (user === undefined) return await reply.code(401).send({ error: 'unauthenticated', message: 'Sign in first.' })
    const decision = decide(config, user)
    return {
      user_id: user.userId,
      sub: user.sub,
      oid: user.oid,
      tid: user.tenantId,
      name: user.name,
      email: user.email,
      preferred_username: user.preferredUsername,
      roles: user.roles,
      groups: user.groups,
      authorization: {
        allowed: decision.allowed,
        required_role: config.requiredRole === undefined
          ? null
          : { any_of: config.requiredRole.roles, token_kind: config.requiredRole.tokenKind, claim_path: config.requiredRole.path.join('.'), satisfied: config.requiredRole.roles.some(r => user.roleValues.includes(r)) }
      }
    }
  })
}
