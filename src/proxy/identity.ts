// What the upstream is told about the user: built here, at the proxy edge, from
// `request.principal` alone, by one function: the identity headers (with the group budget),
// the signed identity JWT and, where configured, the access token. The header part depends
// only on the principal, so it is encoded once per principal object (the memory store and the
// bearer cache hand out the same object on every request), not once per request.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Principal } from '../principal/principal.js'
import { GROUPS_TRUNCATED_HEADER, identityHeaders, type HeaderBudget } from './headers.js'

/** `audience`: the origin of the upstream the request goes to (the identity JWT's `aud`). */
export type UpstreamIdentity = (request: FastifyRequest, audience: string) => Promise<Record<string, string> | undefined>

export function upstreamIdentity (app: FastifyInstance, config: GatewayConfig): UpstreamIdentity {
  const budget: HeaderBudget = { maxGroupBytes: config.forwardGroupsMaxBytes, keepGroups: [...config.requiredGroups, ...config.rules.namedGroups] }
  const encoded = new WeakMap<Principal, Record<string, string>>()
  const forwardsToken = config.forwardAccessToken || config.forwardAuthorizationBearer

  return async function identityFor (request, audience) {
    const principal = request.principal
    if (principal === undefined) return undefined
    let headers = encoded.get(principal)
    if (headers === undefined) {
      headers = identityHeaders(principal, budget)
      encoded.set(principal, headers)
    }
    // A bearer caller presented its own token: it gets the identity headers, nothing signed in its name.
    if (request.principalVia !== 'session') return headers
    const out = { ...headers }
    const jwt = await app.identity.tokenFor(principal, `${principal.tenantId ?? ''}:${principal.userId}:${principal.checkedAt}`, headers[GROUPS_TRUNCATED_HEADER] !== undefined, audience)
    if (jwt !== undefined) out['x-forwarded-identity'] = jwt
    if (forwardsToken) {
      const access = app.tokens.accessToken(request)
      if (access !== undefined) {
        if (config.forwardAccessToken) {
          out['x-forwarded-access-token'] = access.token
          if (access.expiresAt !== undefined) out['x-forwarded-access-token-expires-on'] = String(access.expiresAt)
        }
        if (config.forwardAuthorizationBearer) out.authorization = `Bearer ${access.token}`
      }
    }
    return out
  }
}
