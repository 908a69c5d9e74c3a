/**
 * Userinfo, Entra-like: served outside the issuer path (as graph.microsoft.com/oidc/userinfo is)
 * and accepting the JWT access tokens this IdP issues, which oidc-provider's own userinfo refuses
 * (it rejects every access token that has an audience).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { jwtVerify } from 'jose'
import { userinfoClaims } from './claims.js'
import type { Provider } from './oidc.js'
import { describeError, sendJson } from './respond.js'
import type { IdpUser } from './types.js'

export function makeUserinfoHandler (deps: {
  provider: Provider;
  issuer: string;
  tenantId: string;
  publicKey: CryptoKey;
  findUserByOid: (oid: unknown) => IdpUser | undefined;
}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const unauthorized = (res: ServerResponse, description: string) =>
    sendJson(res, 401, { error: 'invalid_token', error_description: description }, {
      'WWW-Authenticate': `Bearer error="invalid_token", error_description="${description.replace(/"/g, "'")}"`,
    })

  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendJson(res, 405, { error: 'invalid_request' }, { Allow: 'GET, POST' })
      return
    }
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    if (!match?.[1]) {
      sendJson(res, 401, { error: 'invalid_request', error_description: 'no access token provided' }, { 'WWW-Authenticate': 'Bearer' })
      return
    }
    let payload: Record<string, unknown>
    try {
      ({ payload } = await jwtVerify(match[1], deps.publicKey, { issuer: deps.issuer, algorithms: ['RS256'], typ: 'at+jwt' }))
    } catch (err) {
      unauthorized(res, `access token invalid: ${describeError(err)}`)
      return
    }
    // The JWT may verify yet be revoked (sign-out, refresh-token replay): its grant is gone then.
    const grant = typeof payload.aio === 'string' ? await deps.provider.Grant.find(payload.aio) : undefined
    if (!grant || grant.clientId !== payload.client_id) {
      unauthorized(res, 'access token revoked')
      return
    }
    const user = deps.findUserByOid(grant.accountId)
    if (!user) {
      unauthorized(res, 'user no longer exists')
      return
    }
    sendJson(res, 200, userinfoClaims(user, deps.tenantId, grant.clientId, String(payload.scope ?? '').split(' ')))
  }
}
