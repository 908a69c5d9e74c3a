// GET /oauth2/userinfo: the signed-in principal as the gateway sees it, with the resolved roles
// and groups and whether each requirement holds, for the app's front end and for people
// debugging access.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { decide } from '../policy/decide.js'

export default async function userinfoRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  app.get('/oauth2/userinfo', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const auth = await app.authenticate(request)
    if (auth.kind !== 'principal') return app.refuseAuthentication(reply, auth)
    const user = auth.principal
    const decision = decide(config, user)
    const role = config.requiredRole
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
      groups_source: user.groupsOverage ? 'graph' : 'token',
      checked_at: new Date(user.checkedAt).toISOString(),
      authorization: {
        allowed: decision.allowed,
        reason: decision.allowed ? null : decision.reason,
        requirement: decision.allowed ? null : decision.requirement,
        required_role: role === undefined
          ? null
          : { any_of: role.roles, token_kind: role.tokenKind, claim_path: role.path.join('.'), satisfied: role.roles.some(r => user.roleValues.includes(r)) },
        required_groups: config.requiredGroups.length === 0
          ? null
          : { any_of: config.requiredGroups, satisfied: config.requiredGroups.some(g => user.groups.includes(g)) },
        groups_error: user.authzError ?? null
      }
    }
  })
}
