// The guard for the gateway's own browser APIs that hand out tokens or directory data: only
// same-origin scripts (X-Requested-With, which a cross-site form cannot send), only a signed-in
// user whom the gateway would let through, and never cached.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { SessionUser } from '../auth/user.js'
import { decide } from '../policy/decide.js'

export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' }

function sameOriginScript (request: FastifyRequest, publicOrigin: string): boolean {
  if (request.headers['x-requested-with'] !== 'XMLHttpRequest') return false
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin') return false
  const origin = request.headers.origin
  return origin === undefined || origin === publicOrigin
}

export async function guardBrowserApi (app: FastifyInstance, config: GatewayConfig, request: FastifyRequest, reply: FastifyReply): Promise<SessionUser | undefined> {
  reply.headers(NO_STORE)
  if (!sameOriginScript(request, config.publicOrigin)) {
    await reply.code(403).send({ error: 'cross_origin', message: 'This endpoint answers same-origin requests that send X-Requested-With: XMLHttpRequest.' })
    return undefined
  }
  if (request.session.user === undefined) {
    await reply.code(401).send({ error: 'unauthenticated', message: 'Sign in first.' })
    return undefined
  }
  const freshness = await app.tokens.ensureFresh(request)
  const user = request.session.user
  if (freshness !== 'ok' || user === undefined) {
    await reply.code(freshness === 'unavailable' ? 503 : 401).send({ error: freshness === 'unavailable' ? 'idp_unavailable' : 'session_expired', message: 'Sign in again.' })
    return undefined
  }
  const decision = decide(config, user)
  if (!decision.allowed) {
    await reply.code(403).send({ error: 'forbidden', message: `This application ${decision.requirement}.`, reason: decision.reason })
    return undefined
  }
  return user
}
