// The guard for the gateway's own browser APIs that hand out tokens or directory data: only
// same-origin scripts (X-Requested-With, which a cross-site form cannot send), only a signed-in
// user whom the gateway would let through, and never cached.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Principal } from '../principal/principal.js'
import { decide } from '../policy/decide.js'

export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' }

/** `origins`: the configured sites (DOMAIN_SERVER's, and the host routes' under COOKIE_DOMAIN). */
function sameOriginScript (request: FastifyRequest, origins: ReadonlyMap<string, string>): boolean {
  if (request.headers['x-requested-with'] !== 'XMLHttpRequest') return false
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin') return false
  const origin = request.headers.origin
  if (origin === undefined) return true
  // A handful of sites at most: a scan costs less than keeping a second collection.
  for (const site of origins.values()) if (site === origin) return true
  return false
}

/** The request's principal when it may use these APIs; otherwise the refusal is sent and undefined returned. */
export async function guardBrowserApi (app: FastifyInstance, config: GatewayConfig, request: FastifyRequest, reply: FastifyReply): Promise<Principal | undefined> {
  reply.headers(NO_STORE)
  if (!sameOriginScript(request, config.siteOrigins)) {
    reply.problem({ status: 403, error: 'cross_origin', message: 'This endpoint answers same-origin requests that send X-Requested-With: XMLHttpRequest.', page: { title: 'Not for this page', body: '<p>This address is for the application\'s own scripts.</p>' } })
    return undefined
  }
  const auth = await app.authenticate(request)
  if (auth.kind !== 'principal') {
    app.refuseAuthentication(reply, auth)
    return undefined
  }
  const decision = decide(config, auth.principal)
  if (!decision.allowed) {
    app.deny(request, reply, auth.principal, decision)
    return undefined
  }
  return auth.principal
}
