// GET /oauth2/token?scope=...: a delegated access token for the signed-in user, for scopes on
// the allow-list only (Graph scopes, the SharePoint picker's, TOKEN_ALLOWED_SCOPES), redeemed
// with the refresh token for that one resource and cached until near expiry.
// GET /oauth2/config: what the browser may use, without secrets.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { guardBrowserApi, NO_STORE } from './browser-api.js'
import { RefreshError } from '../tokens/jar.js'

/** A token handed out must stay valid at least this long. */
const MIN_VALIDITY_SECONDS = 120

export function resourceOf (scope: string): string | undefined {
  try {
    return new URL(scope).origin
  } catch {
    return undefined
  }
}

export default async function tokenRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const allowed = new Set(config.tokenAllowedScopes)
  const graphScopes = new Set(config.graphScopes)

  app.get('/oauth2/token', async (request, reply) => {
    const user = await guardBrowserApi(app, config, request, reply)
    if (user === undefined) return reply
    const raw = (request.query as Record<string, unknown>).scope
    const scopes = typeof raw === 'string' ? raw.split(/[\s+]+/).filter(Boolean) : []
    if (scopes.length === 0) return reply.problem({ status: 400, error: 'invalid_scope', message: 'Ask for one or more scopes: ?scope=<space-separated scopes>.' })
    const refused = scopes.filter(s => !allowed.has(s))
    if (refused.length > 0) return reply.problem({ status: 400, error: 'invalid_scope', message: `Not allowed: ${refused.join(' ')}.`, json: { refused } })
    const resources = new Set(scopes.map(resourceOf))
    if (resources.size !== 1) return reply.problem({ status: 400, error: 'invalid_scope', message: 'One access token serves one resource: ask for the scopes of one resource at a time.' })

    const now = Math.floor(Date.now() / 1000)
    // The sign-in token already targets Graph with every Graph scope: hand it out while valid.
    const signIn = app.tokens.accessToken(request)
    if (scopes.every(s => graphScopes.has(s)) && signIn?.expiresAt !== undefined && signIn.expiresAt - MIN_VALIDITY_SECONDS > now) {
      return { access_token: signIn.token, token_type: 'Bearer', expires_in: signIn.expiresAt - now, scope: config.graphScopes.join(' ') }
    }
    try {
      const token = await app.tokens.withJar(request, async jar => await jar.forScopes(scopes, MIN_VALIDITY_SECONDS))
      return { access_token: token.accessToken, token_type: 'Bearer', expires_in: token.expiresAt - now, scope: token.scope }
    } catch (err) {
      const reason = err instanceof RefreshError ? err.reason : 'error'
      // A revoked grant has already ended the session (withJar): sign in again.
      if (request.session.user === undefined) return reply.problem({ status: 401, error: 'session_expired', message: 'Your session has ended; sign in again.', jsonOnly: true, json: { login_url: `${config.publicOrigin}/oauth2/sign_in`, idp_error: err instanceof RefreshError ? err.idpError : undefined } })
      request.log.warn({ event: 'token_request_failed', user: user.userId, reason, idpError: err instanceof RefreshError ? err.idpError : undefined }, 'token for another resource failed')
      const status = reason === 'invalid_grant' || reason === 'no_refresh_token' ? 401 : 502
      return reply.problem({ status, error: reason === 'invalid_grant' ? 'session_expired' : 'token_unavailable', message: 'A token for that resource could not be obtained.', json: { idp_error: err instanceof RefreshError ? err.idpError : undefined } })
    }
  })

  const publicConfig = JSON.stringify({
    token_endpoint: '/oauth2/token',
    graph: { enabled: config.graphScopes.length > 0, scopes: config.graphScopes },
    sharepoint: {
      enabled: config.sharePoint.enabled,
      base_url: config.sharePoint.baseUrl ?? null,
      sharepoint_scope: config.sharePoint.sharePointScope ?? null,
      graph_scope: config.sharePoint.graphScope ?? null
    },
    people_search: { enabled: config.peopleSearch, include_owners_as_members: config.includeOwnersAsMembers },
    userinfo_endpoint: '/oauth2/userinfo',
    sign_out_endpoint: '/oauth2/sign_out'
  })
  app.get('/oauth2/config', (_request, reply) => {
    reply.headers({ ...NO_STORE, 'content-type': 'application/json; charset=utf-8' }).send(publicConfig)
  })
}
