// Sign-out from the IdP ends the gateway's sessions. At sign-in each session is linked in the
// store to its IdP session (`sid`) and its user (`sub`); a logout the IdP sends names those:
// - front channel: `GET /oauth2/front_channel_logout?sid=...[&iss=...]`, loaded by the IdP's
//   sign-out page in a hidden iframe (Entra sends `sid` and leaves `iss` out). No cookie arrives
//   in a third-party frame, so the link, not the browser's session, finds the sessions.
// - back channel: `POST /oauth2/back_channel_logout` with a signed `logout_token` (oidc-provider,
//   Keycloak, ...; not Entra today).
// Either way every linked session of that issuer ends: store entry and side entry.
import fp from 'fastify-plugin'
import { createRemoteJWKSet, customFetch } from 'jose'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { acceptableIssuer, BACK_CHANNEL_LOGOUT_PATH, FRONT_CHANNEL_LOGOUT_PATH, jtiKey, linkKey, LogoutTokenError, MAX_LOGOUT_TOKEN_AGE_SECONDS, MAX_LOGOUT_VALUE_LENGTH, verifyLogoutToken } from '../oidc/logout.js'
import { issuerForTenant } from '../oidc/issuer.js'
import type { Principal } from '../principal/principal.js'

export interface IdpLogout {
  /** Links the request's freshly signed-in session to its `sid` and `sub` (called at sign-in, after save). */
  link: (request: FastifyRequest) => Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    idpLogout: IdpLogout
  }
}

async function idpLogoutPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const store = app.sessionStoreImpl
  // Only the IdP's sign-out page may frame the front-channel answer; nothing else may.
  const frameHeaders = {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': `default-src 'none'; frame-ancestors ${new URL(config.issuer).origin}; base-uri 'none'; form-action 'none'`,
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff'
  }
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined

  const metadataIssuer = async (): Promise<string> => (await app.idp.get()).serverMetadata().issuer

  /** How long a link must last: as long as the session can (it slides within the absolute bound with OPENID_REUSE_TOKENS). */
  const linkUntil = (user: Principal, expiresAt: number): number =>
    config.reuseTokens ? Math.max(expiresAt, user.signedInAt + config.sessionMaxAgeSeconds * 1000) : expiresAt

  async function link (request: FastifyRequest): Promise<void> {
    const user = request.session.user
    if (user === undefined) return
    const until = linkUntil(user, request.session.expiresAt)
    const id = request.session.sessionId
    if (user.sid !== undefined) await store.link(linkKey('sid', user.sid), id, until)
    await store.link(linkKey('sub', user.sub), id, until)
  }

  /**
   * Ends every session linked to the sid (else the sub) whose principal matches the logout:
   * same sid and sub where named, same issuer where named. Sessions that do not match stay linked.
   */
  async function endLinked (request: FastifyRequest, match: { sid?: string | undefined, sub?: string | undefined, iss?: string | undefined }, channel: 'front' | 'back'): Promise<number> {
    const key = match.sid !== undefined ? linkKey('sid', match.sid) : linkKey('sub', match.sub as string)
    const ids = await store.takeLinked(key)
    const issuer = match.iss !== undefined ? await metadataIssuer() : undefined
    let ended = 0
    for (const id of ids) {
      const stored = await store.get(id)
      const user = stored?.data.user
      if (stored === undefined || user === undefined) continue
      const matches = (match.sid === undefined || user.sid === match.sid) &&
        (match.sub === undefined || user.sub === match.sub) &&
        (issuer === undefined || issuerForTenant(issuer, user.tenantId) === match.iss)
      if (!matches) {
        await store.link(key, id, linkUntil(user, stored.expiresAt))
        continue
      }
      await store.destroy(id)
      await app.tokens.forgetSession(id)
      ended++
      request.log.info({ event: 'session_end', user: user.userId, tenant: user.tenantId, reason: `idp_logout_${channel}` }, 'session ended by the identity provider')
    }
    app.log.info({ event: 'idp_logout', channel, sessions: ended, by: match.sid !== undefined ? 'sid' : 'sub' }, 'logout from the identity provider')
    return ended
  }

  app.decorate('idpLogout', { link })

  const framed = (reply: FastifyReply, status: number, title: string, text: string): FastifyReply =>
    reply.code(status).headers(frameHeaders).send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><p>${text}</p></body></html>`)

  app.get(FRONT_CHANNEL_LOGOUT_PATH, { config: { session: false } }, async (request, reply) => {
    const q = request.query as Record<string, unknown>
    const sid = typeof q.sid === 'string' && q.sid !== '' && q.sid.length <= MAX_LOGOUT_VALUE_LENGTH ? q.sid : undefined
    // Entra leaves iss out; when sent it must be this gateway's IdP.
    const iss = q.iss === undefined ? undefined : typeof q.iss === 'string' ? q.iss : ''
    if (sid === undefined) return framed(reply, 400, 'Bad logout request', 'This sign-out request names no session (sid).')
    let issuer: string | undefined
    try {
      // Only a named issuer needs the IdP's metadata (loaded once; Entra names none).
      if (iss !== undefined) issuer = await metadataIssuer()
    } catch {
      return framed(reply, 503, 'Unavailable', 'The sign-in service cannot be reached right now.')
    }
    if (iss !== undefined && (issuer === undefined || !acceptableIssuer(issuer, iss, config.allowedTenants))) {
      request.log.warn({ event: 'idp_logout_refused', channel: 'front', reason: 'issuer' }, 'front-channel logout from another issuer refused')
      return framed(reply, 400, 'Bad logout request', 'This sign-out request comes from another identity provider.')
    }
    await endLinked(request, { sid, iss }, 'front')
    return framed(reply, 200, 'Signed out', 'Signed out.')
  })

  // The form body parser lives in this scope only: inherited by the proxy it would swallow proxied forms.
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
      done(null, new URLSearchParams(body as string))
    })
    scope.post(BACK_CHANNEL_LOGOUT_PATH, { config: { session: false } }, async (request, reply) => {
      const refuse = (description: string): FastifyReply => {
        request.log.warn({ event: 'idp_logout_refused', channel: 'back', reason: description }, 'back-channel logout refused')
        return reply.problem({ status: 400, error: 'invalid_request', message: description, jsonOnly: true, json: { error_description: description } })
      }
      const params = request.body instanceof URLSearchParams ? request.body : undefined
      const tokens = params?.getAll('logout_token') ?? []
      if (tokens.length !== 1 || tokens[0] === '') return refuse('the request must carry one logout_token (application/x-www-form-urlencoded)')
      let oidc
      try {
        oidc = await app.idp.get()
      } catch {
        return reply.header('retry-after', '30').problem({ status: 503, error: 'idp_unavailable', message: 'The identity provider\'s keys cannot be loaded right now.', jsonOnly: true })
      }
      const meta = oidc.serverMetadata()
      if (keys === undefined) {
        if (meta.jwks_uri === undefined) return refuse('the identity provider publishes no keys')
        // Through the outbound proxy, like every call to the IdP.
        keys = createRemoteJWKSet(new URL(meta.jwks_uri), { [customFetch]: app.egress.fetch })
      }
      let token
      try {
        token = await verifyLogoutToken(tokens[0] as string, { keys, metadataIssuer: meta.issuer, clientId: config.clientId, allowedTenants: config.allowedTenants, clockToleranceSeconds: config.clockToleranceSeconds })
      } catch (err) {
        if (err instanceof LogoutTokenError) return refuse(err.message)
        throw err
      }
      // Shared by every replica (Redis with SESSION_STORE=redis): a token is acted on once.
      if (!await store.firstUse(jtiKey(token.iss, token.jti), (MAX_LOGOUT_TOKEN_AGE_SECONDS + 2 * config.clockToleranceSeconds) * 1000)) {
        return refuse('this logout token was already used (jti)')
      }
      await endLinked(request, { sid: token.sid, sub: token.sub, iss: token.iss }, 'back')
      return reply.code(200).header('cache-control', 'no-store').send()
    })
  })
}

export default fp(idpLogoutPlugin, { name: 'idp-logout', fastify: '5.x', dependencies: ['session', 'discovery', 'tokens', 'pages', 'egress'] })
