// Sign-out: ends the gateway session in the store, clears the cookie and, when configured,
// ends the Entra session too. Only same-origin POSTs sign out (a link on another site cannot).
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { endSessionUrl } from './oidc.js'

export function isSameOrigin (request: FastifyRequest, publicOrigin: string): boolean {
  const origin = request.headers.origin
  if (origin !== undefined) return origin === publicOrigin
  // Without Origin, only the browser's own Sec-Fetch-Site vouches for the request.
  return request.headers['sec-fetch-site'] === 'same-origin'
}

async function signOutPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts

  app.get('/oauth2/sign_out', async (_request, reply) => {
    return reply.page(200, {
      title: 'Sign out',
      body: '<p>Sign out of this application?</p><div class="actions"><form method="post" action="/oauth2/sign_out"><button type="submit" id="sign-out">Sign out</button></form><a href="/">Cancel</a></div>'
    })
  })

  app.post('/oauth2/sign_out', async (request, reply) => {
    if (!isSameOrigin(request, config.publicOrigin)) {
      request.log.warn({ event: 'sign_out_refused', reason: 'cross_origin', origin: request.headers.origin }, 'sign-out refused')
      return reply.problem({
        status: 403,
        error: 'cross_origin',
        message: 'Sign-out must come from this site.',
        page: { title: 'Sign-out refused', body: '<p>This sign-out request did not come from this site. Use the sign-out button instead.</p><div class="actions"><a class="button" href="/oauth2/sign_out">Go to sign-out</a></div>' }
      })
    }
    const user = request.session.user
    const idToken = request.session.tokens?.idToken
    await request.session.destroy()
    reply.clearCookie(config.cookieName, { path: '/', httpOnly: true, sameSite: 'lax', secure: config.secureCookies })
    request.log.info({ event: 'sign_out', user: user?.userId, tenant: user?.tenantId, ip: request.ip }, 'signed out')

    let next: string | undefined
    if (config.useEndSessionEndpoint && app.idp.ready) {
      const oidc = await app.idp.get()
      next = endSessionUrl(oidc, { idToken, logoutHint: user?.preferredUsername, clientId: config.clientId, postLogoutRedirectUri: config.postLogoutRedirectUri })?.href
    }
    reply.header('cache-control', 'no-store')
    if (next !== undefined) return reply.redirect(next, 303)
    return reply.page(200, {
      title: 'Signed out',
      body: '<p>You are signed out of this application.</p><div class="actions"><a class="button" href="/oauth2/sign_in">Sign in again</a></div>'
    })
  })
}

export default fp(signOutPlugin, { name: 'signout', fastify: '5.x', dependencies: ['session', 'discovery', 'pages'] })
