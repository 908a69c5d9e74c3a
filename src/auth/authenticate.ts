// Who is asking: the one place a request's identity is established. A session cookie (kept
// fresh: refreshed and re-authorized when due) or, where allowed, an API bearer token becomes
// `request.principal`; the gate, userinfo, the token and directory routes and the proxy edge
// read that and nothing else. Established at most once per request.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Principal } from '../principal/principal.js'

export type Authentication =
  | { kind: 'principal', principal: Principal, via: 'session' | 'bearer' }
  /** No session and no bearer token of ours. */
  | { kind: 'anonymous' }
  /** A bearer token for this app that does not verify. */
  | { kind: 'invalid_bearer', reason: string }
  /** The session could not be renewed (refresh token refused): sign in again. */
  | { kind: 'ended' }
  /** The token expired and another replica holds the refresh lock. */
  | { kind: 'busy' }
  /** The token expired and the IdP is not answering. */
  | { kind: 'unavailable' }

export interface AuthenticateOptions {
  /** Accept an API bearer token (BEARER_AUTH, proxied paths only). */
  bearer?: boolean
  /** false: take the session only if nothing is due, and start no refresh (public paths). */
  refresh?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who this request is, once authenticated; undefined for the anonymous. */
    principal: Principal | undefined
    /** Where the principal came from: the proxy edge forwards a session's tokens, never a bearer's. */
    principalVia: 'session' | 'bearer' | undefined
  }
  interface FastifyInstance {
    authenticate: (request: FastifyRequest, opts?: AuthenticateOptions) => Promise<Authentication>
    /** The API answer for an authentication that yielded no principal. */
    refuseAuthentication: (reply: FastifyReply, auth: Exclude<Authentication, { kind: 'principal' }>) => FastifyReply
  }
}

const ANONYMOUS: Authentication = { kind: 'anonymous' }
const kDone = Symbol('entra-gateway.authenticated')
type Marked = FastifyRequest & { [kDone]?: Authentication }

async function authenticatePlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  app.decorateRequest('principal', undefined)
  app.decorateRequest('principalVia', undefined)

  async function fromSession (request: FastifyRequest, refresh: boolean): Promise<Authentication> {
    const session = request.session
    if (session?.user === undefined) return ANONYMOUS
    if (!refresh) return app.tokens.isDue(request) ? ANONYMOUS : { kind: 'principal', principal: session.user, via: 'session' }
    const freshness = await app.tokens.ensureFresh(request)
    if (freshness !== 'ok') return { kind: freshness }
    const principal = session.user
    return principal === undefined ? { kind: 'ended' } : { kind: 'principal', principal, via: 'session' }
  }

  async function authenticate (request: FastifyRequest, o: AuthenticateOptions = {}): Promise<Authentication> {
    const marked = request as Marked
    const done = marked[kDone]
    if (done !== undefined) return done
    let auth: Authentication = ANONYMOUS
    if (o.bearer === true) {
      const bearer = await app.bearer.authenticate(request)
      if (bearer.kind === 'invalid') auth = { kind: 'invalid_bearer', reason: bearer.reason }
      else if (bearer.kind === 'valid') auth = { kind: 'principal', principal: bearer.principal, via: 'bearer' }
    }
    if (auth.kind === 'anonymous') auth = await fromSession(request, o.refresh !== false)
    if (auth.kind === 'principal') {
      request.principal = auth.principal
      request.principalVia = auth.via
    }
    marked[kDone] = auth
    return auth
  }

  function refuseAuthentication (reply: FastifyReply, auth: Exclude<Authentication, { kind: 'principal' }>): FastifyReply {
    switch (auth.kind) {
      // API answers (a navigation is sent to sign in instead, by the gate): JSON whatever the Accept.
      case 'anonymous':
        return reply.problem({ status: 401, error: 'unauthenticated', message: 'Sign in first.', jsonOnly: true, json: { login_url: `${config.publicOrigin}/oauth2/sign_in` } })
      case 'invalid_bearer':
        return reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${auth.reason}"`)
          .problem({ status: 401, error: 'invalid_token', message: `The bearer token was refused: ${auth.reason}.`, jsonOnly: true })
      case 'ended':
        return reply.problem({ status: 401, error: 'session_expired', message: 'Your session has ended; sign in again.', jsonOnly: true, json: { login_url: `${config.publicOrigin}/oauth2/sign_in` } })
      case 'busy':
        return reply.header('retry-after', '2').problem({ status: 503, error: 'renewal_in_progress', message: 'Your session is being renewed by another gateway instance, which has not finished; please try again.', page: { title: 'Session renewal in progress', body: '<p>Your session needs renewing, and that is already under way elsewhere but has not finished yet. Please try again in a moment.</p>' } })
      case 'unavailable':
        return reply.header('retry-after', '30').problem({ status: 503, error: 'idp_unavailable', message: 'Your session could not be renewed because the sign-in service is not answering.', page: { title: 'Sign-in service unavailable', body: '<p>Your session needs renewing, but the sign-in service is not answering. Please try again in a minute.</p>' } })
    }
  }

  app.decorate('authenticate', authenticate)
  app.decorate('refuseAuthentication', refuseAuthentication)
}

export default fp(authenticatePlugin, { name: 'authenticate', fastify: '5.x', dependencies: ['session', 'tokens', 'bearer', 'pages'] })
