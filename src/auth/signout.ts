// Sign-out: ends the gateway session in the store, clears the cookie and, when configured,
// ends the Entra session too. Only same-origin POSTs sign out (a link on another site cannot);
// with COOKIE_DOMAIN, the host routes' sites share the session and may sign it out too.
// Every sign-out ends at OPENID_POST_LOGOUT_REDIRECT_URI, by default the gateway's own
// "You are signed out" page, which starts no sign-in (LibreChat's default, its /login page,
// would sign the user straight back in behind the gateway).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { SIGNED_OUT_PATH, type GatewayConfig } from '../config.js'
import { endSessionUrl } from '../oidc/flow.js'
import { escapeHtml } from '../pages/render.js'
import { serializeCookie } from '../session/cookies.js'

/** `origins`: the configured sites (DOMAIN_SERVER's, and the host routes' under COOKIE_DOMAIN). */
export function isSameOrigin (request: FastifyRequest, origins: ReadonlySet<string>): boolean {
  // Our pages send Referrer-Policy: no-referrer, so a browser posts their forms with
  // `Origin: null`; its own Sec-Fetch-Site still says where the request came from.
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site === 'same-origin'
  const origin = request.headers.origin
  return origin !== undefined && origins.has(origin)
}

export interface SignOut {
  /**
   * Ends the gateway session (store entry and cookie). With the end-session setting the
   * browser keeps a marker so its next navigation also ends the Entra session.
   */
  endSession: (request: FastifyRequest, reason: string) => Promise<void>
  /** The IdP end-session URL for a pending marker, consuming it; undefined when none. */
  takeEndSessionRedirect: (request: FastifyRequest) => Promise<string | undefined>
}

declare module 'fastify' {
  interface FastifyInstance {
    signOut: SignOut
  }
}

async function signOutPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const siteOrigins = new Set(config.siteOrigins.values())
  // With COOKIE_DOMAIN, a host-only session cookie of before goes too.
  const clearHostOnly = config.hostOnlyCookies !== undefined ? serializeCookie(config.hostOnlyCookies.session, '', 0, { secure: config.secureCookies }) : undefined

  interface LogoutHint { idToken?: string | undefined, logoutHint?: string | undefined }

  /** Logs the sign-out and drops the tokens; returns what Entra's end-session needs. */
  async function takeTokens (request: FastifyRequest, reason: string): Promise<LogoutHint> {
    const user = request.session.user
    // Entra's logout_hint is the ID token's login_hint claim (an opaque value), not a name.
    const set = await app.tokens.open(request)
    await app.tokens.forget(request)
    request.log.info({ event: 'sign_out', user: user?.userId, tenant: user?.tenantId, ip: request.ip, reason }, 'signed out')
    return { idToken: set?.idToken, logoutHint: set?.loginHint }
  }

  /** The Entra end-session URL, when configured and the IdP's metadata is loaded. */
  async function entraLogoutUrl (hint: LogoutHint): Promise<string | undefined> {
    if (!config.useEndSessionEndpoint || !app.idp.ready) return undefined
    return endSessionUrl(await app.idp.get(), { idToken: hint.idToken, logoutHint: hint.logoutHint, clientId: config.clientId, postLogoutRedirectUri: config.postLogoutRedirectUri, maxUrlLength: config.maxLogoutUrlLength })?.href
  }

  async function endSession (request: FastifyRequest, reason: string): Promise<void> {
    const hint = await takeTokens(request, reason)
    if (!config.useEndSessionEndpoint) {
      await request.session.destroy()
      return
    }
    // Keep only the marker: no identity, no tokens; the cookie stays for the next navigation.
    const s = request.session
    s.user = undefined
    s.sealed = undefined
    s.accessExp = undefined
    s.endSession = app.sealer.sealJson(hint, `end-session:${s.sessionId}`)
    await s.save()
  }

  async function takeEndSessionRedirect (request: FastifyRequest): Promise<string | undefined> {
    const s = request.session
    if (s.endSession === undefined) return undefined
    const marker = app.sealer.openJson(s.endSession, `end-session:${s.sessionId}`) as LogoutHint | undefined
    // Used once: the marker's session ends here.
    await s.destroy()
    if (marker === undefined || typeof marker !== 'object') return undefined
    return await entraLogoutUrl(marker)
  }

  app.decorate('signOut', { endSession, takeEndSessionRedirect })

  app.get('/oauth2/sign_out', async (request, reply) => {
    // Nothing to sign out of (a pending end-session marker still is: it ends the Entra session).
    if (request.session.user === undefined && request.session.endSession === undefined) {
      return reply.page(200, {
        title: 'You are not signed in',
        body: `<p>You are not signed in to ${escapeHtml(config.title)}, so there is nothing to sign out of.</p><div class="actions"><a class="button" id="sign-in" href="/oauth2/sign_in">Sign in</a></div>`
      })
    }
    return reply.page(200, {
      title: 'Sign out',
      body: '<p>Sign out of this application?</p><div class="actions"><form method="post" action="/oauth2/sign_out"><button type="submit" id="sign-out">Sign out</button></form><a href="/">Cancel</a></div>'
    })
  })

  // Public, and no session is read: it shows the same to everyone and starts nothing.
  app.get(SIGNED_OUT_PATH, { config: { session: false } }, async (_request, reply) => {
    return reply.page(200, {
      title: 'You are signed out',
      body: `<p>You have signed out of ${escapeHtml(config.title)}. You can close this window.</p><div class="actions"><a class="button" id="sign-in" href="/oauth2/sign_in">Sign in again</a></div>`
    })
  })

  // The sign-out forms post an empty urlencoded body. The parser lives in this scope only:
  // inherited by the proxy, it would swallow proxied form bodies.
  await app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_request, _body, done) => { done(null, {}) })
    scope.post('/oauth2/sign_out', async (request, reply) => {
      if (!isSameOrigin(request, siteOrigins)) {
        request.log.warn({ event: 'sign_out_refused', reason: 'cross_origin', origin: request.headers.origin }, 'sign-out refused')
        return reply.problem({
          status: 403,
          error: 'cross_origin',
          message: 'Sign-out must come from this site.',
          page: { title: 'Sign-out refused', body: '<p>This sign-out request did not come from this site. Use the sign-out button instead.</p><div class="actions"><a class="button" href="/oauth2/sign_out">Go to sign-out</a></div>' }
        })
      }
      const hint = await takeTokens(request, 'sign_out')
      if (clearHostOnly !== undefined) reply.header('set-cookie', clearHostOnly)
      await request.session.destroy()
      const next = await entraLogoutUrl(hint) ?? config.postLogoutRedirectUri
      return reply.header('cache-control', 'no-store').redirect(next, 303)
    })
  })
}

export default fp(signOutPlugin, { name: 'signout', fastify: '5.x', dependencies: ['session', 'discovery', 'pages', 'tokens'] })
