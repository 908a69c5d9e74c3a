// Sign-in: starting the authorization-code flow and completing it at the callback.
// The login transaction lives in a sealed cookie of the browser that started it, keyed by
// state, so a callback is accepted only in that browser, only once, only for 10 minutes.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { isNavigation } from '../policy/request-kind.js'
import { safeReturnPath } from '../policy/return-path.js'
import { escapeHtml } from '../pages/render.js'
import { beginSignIn, completeSignIn, SignInError, type LoginTransaction, type SignInResult } from '../oidc/flow.js'
import type { Principal } from '../principal/principal.js'
import { readPrincipal } from '../tokens/principal.js'
import { loginHintOf, TokenJar } from '../tokens/jar.js'
import type { Configuration } from 'openid-client'
import { readCookie, serializeCookie } from '../session/cookies.js'
import { boundedReturnPath, LOGIN_COOKIE_MAX_AGE_MS, readTransactions, sealTransactions } from './login-cookie.js'
const PROMPTS = new Set(['select_account', 'login'])

export interface SignIn {
  /** Answers a request that has no session: a redirect to the IdP for a navigation, else 401 JSON. */
  requireSignIn: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>
  /**
   * Completes a sign-in when the request carries the state of one this browser started.
   * Returns false (and does nothing) otherwise, so the request goes on as an ordinary one.
   */
  handleCallback: (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    signIn: SignIn
  }
}

const SIGN_IN_REASONS: Record<string, string> = {
  state_unknown: "This sign-in response doesn't belong to a sign-in started in this browser, or it was already used.",
  state_expired: 'The sign-in took longer than 10 minutes and expired.',
  idp_error: 'The identity provider did not complete the sign-in.',
  token_error: 'The identity provider refused to complete the sign-in.',
  token_invalid: 'The sign-in response could not be verified.',
  idp_unavailable: 'The sign-in service could not be reached to complete the sign-in. Please try again in a minute.',
  token_stale: 'The sign-in response was too old to accept.',
  token_future: "The sign-in response was dated in the future; the server's clock may be wrong.",
  tenant_not_allowed: 'Your account belongs to an organization that may not use this application.',
  userinfo_failed: 'Your account details could not be read from the identity provider.'
}

async function signInPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const loginCookie = config.loginCookieName
  const cookieFlags = { secure: config.secureCookies }
  const sealer = app.sealer

  /** Writes this browser's pending transactions back (or removes the cookie when none is left). */
  function writeLoginCookie (reply: FastifyReply, pending: Map<string, LoginTransaction>): void {
    reply.header('set-cookie', pending.size === 0
      ? serializeCookie(loginCookie, '', 0, cookieFlags)
      : serializeCookie(loginCookie, sealTransactions(sealer, pending), LOGIN_COOKIE_MAX_AGE_MS, cookieFlags))
  }

  const idpUnavailable = (reply: FastifyReply): FastifyReply => reply.problem({
    status: 503,
    error: 'idp_unavailable',
    message: 'The sign-in service cannot be reached right now.',
    page: { title: 'Sign-in is unavailable', body: '<p>The sign-in service cannot be reached right now. Please try again in a minute.</p>' }
  })

  async function startSignIn (request: FastifyRequest, reply: FastifyReply, returnTo: string, prompt?: string): Promise<FastifyReply> {
    let oidc: Configuration
    try {
      oidc = await app.idp.get()
    } catch {
      return idpUnavailable(reply)
    }
    const { url, state, transaction } = await beginSignIn(oidc, { redirectUri: config.redirectUri, scope: config.signInScope, returnTo: boundedReturnPath(returnTo), prompt, audience: config.audience })
    const pending = readTransactions(sealer, readCookie(request.headers.cookie, loginCookie), Date.now())
    pending.set(state, transaction)
    writeLoginCookie(reply, pending)
    return reply.redirect(url.href, 302)
  }

  function signInFailed (request: FastifyRequest, reply: FastifyReply, reason: string, returnTo: string, idpError?: string, logDetail?: string): FastifyReply {
    request.log.warn({ event: 'sign_in_failed', reason, idpError, detail: logDetail, ip: request.ip }, 'sign-in failed')
    app.metrics.signIns.inc({ result: reason })
    const retry = '/oauth2/sign_in?rd=' + encodeURIComponent(returnTo)
    const words = SIGN_IN_REASONS[reason] ?? 'The sign-in could not be completed.'
    return reply.problem({
      status: reason === 'idp_unavailable' ? 503 : 400,
      error: 'sign_in_failed',
      message: words,
      page: {
        title: "Sign-in didn't complete",
        body: `<p>${escapeHtml(words)}</p><div class="actions"><a class="button" href="${escapeHtml(retry)}">Try signing in again</a></div>`,
        detail: `Reason: ${reason}${idpError !== undefined ? ` (${idpError})` : ''}. Request id ${request.id}.`
      },
      json: { reason, idp_error: idpError }
    })
  }

  async function handleCallback (request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const query = request.query as Record<string, unknown>
    // A repeated parameter arrives as an array: that is no state at all.
    const state = typeof query.state === 'string' ? query.state : undefined
    const now = Date.now()
    const pending = readTransactions(sealer, readCookie(request.headers.cookie, loginCookie), now - LOGIN_COOKIE_MAX_AGE_MS)
    const transaction: LoginTransaction | undefined = state !== undefined ? pending.get(state) : undefined

    if (transaction === undefined || state === undefined) {
      // Not ours. A signed-in user's request is the upstream's (LibreChat's own OpenID
      // callback on the same path); for anyone else a sign-in response we cannot match
      // gets an explanation instead of a silent restart.
      if (request.session.user !== undefined) return false
      if (state === undefined && query.code === undefined && query.error === undefined) return false
      signInFailed(request, reply, 'state_unknown', '/')
      return true
    }

    // Usable once: consumed before anything can fail; expired neighbours are dropped with it.
    pending.delete(state)
    for (const [s, tx] of pending) if (tx.expiresAt <= now) pending.delete(s)
    writeLoginCookie(reply, pending)
    if (transaction.expiresAt <= now) {
      signInFailed(request, reply, 'state_expired', transaction.returnTo)
      return true
    }

    let oidc: Configuration
    try {
      oidc = await app.idp.get()
    } catch {
      idpUnavailable(reply)
      return true
    }

    const callbackUrl = new URL(config.redirectUri)
    const q = request.url.indexOf('?')
    callbackUrl.search = q === -1 ? '' : request.url.slice(q)
    let result: SignInResult
    try {
      result = await completeSignIn(oidc, { callbackUrl, state, transaction, allowedTenants: config.allowedTenants, clockToleranceSeconds: config.clockToleranceSeconds })
    } catch (err) {
      if (err instanceof SignInError) signInFailed(request, reply, err.reason, transaction.returnTo, err.idpError, err.message)
      else signInFailed(request, reply, 'token_invalid', transaction.returnTo, undefined, (err as Error).message)
      return true
    }
    const loginHint = loginHintOf(result.claims)
    const jar = new TokenJar(oidc, {
      idToken: result.idToken,
      accessToken: result.accessToken,
      accessTokenExpiresAt: result.accessTokenExpiresAt,
      refreshToken: result.refreshToken,
      scope: result.scope,
      ...(loginHint !== undefined ? { loginHint } : {})
    })
    let user: Principal
    try {
      user = await readPrincipal({ config, oidc, jar, graph: app.tokens.graph, pool: app.tokens.pool }, result.claims, Date.now())
    } catch (err) {
      signInFailed(request, reply, 'userinfo_failed', transaction.returnTo, undefined, (err as Error).message)
      return true
    }

    // A new session id at sign-in: whatever id the browser had before (possibly planted)
    // is worth nothing afterwards.
    // A browser signing in again (another account) leaves no tokens of its old session behind.
    if (request.session.user !== undefined) await app.tokens.forget(request)
    await request.session.regenerate()
    request.session.user = user
    const maxAge = config.reuseTokens ? Math.min(config.sessionExpirySeconds, config.sessionMaxAgeSeconds) : config.sessionExpirySeconds
    request.session.setMaxAge(maxAge * 1000)
    await app.tokens.keep(request, jar.set)
    await request.session.save()
    app.metrics.signIns.inc({ result: 'success' })
    request.log.info({ event: 'sign_in', user: user.userId, tenant: user.tenantId, ip: request.ip, groupsOverage: user.groupsOverage, authzError: user.authzError }, 'signed in')
    reply.redirect(transaction.returnTo, 302)
    return true
  }

  /** With OPENID_AUTO_REDIRECT=false: a page with the sign-in button instead of a redirect. */
  function signInPage (reply: FastifyReply, returnTo: string): FastifyReply {
    const href = '/oauth2/sign_in?rd=' + encodeURIComponent(returnTo)
    const icon = config.imageUrl !== undefined || config.logoFile !== undefined ? '<img src="/oauth2/assets/logo" alt="">' : ''
    return reply.page(401, {
      title: `Sign in to ${config.title}`,
      body: `<p>Sign in with your work or school account to continue.</p><div class="actions"><a class="button" id="sign-in" href="${escapeHtml(href)}">${icon}${escapeHtml(config.buttonLabel)}</a></div>`
    })
  }

  async function requireSignIn (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const returnTo = safeReturnPath(request.url)
    if (isNavigation(request.method, request.headers)) {
      // The app logged the user out: end the Entra session now rather than sign in silently again.
      const endSession = await app.signOut.takeEndSessionRedirect(request)
      if (endSession !== undefined) return reply.header('cache-control', 'no-store').redirect(endSession, 303)
      if (!config.autoRedirect) return signInPage(reply, returnTo)
      return await startSignIn(request, reply, returnTo)
    }
    const loginUrl = `${config.publicOrigin}/oauth2/sign_in?rd=${encodeURIComponent(returnTo)}`
    // Not a navigation (an API call, a form post): JSON with where to sign in, never a redirect.
    return reply.problem({ status: 401, error: 'unauthenticated', message: 'Sign in first.', jsonOnly: true, json: { login_url: loginUrl } })
  }

  app.decorate('signIn', { requireSignIn, handleCallback })

  app.get('/oauth2/sign_in', async (request, reply) => {
    const query = request.query as Record<string, unknown>
    const prompt = typeof query.prompt === 'string' && PROMPTS.has(query.prompt) ? query.prompt : undefined
    return await startSignIn(request, reply, safeReturnPath(query.rd), prompt)
  })
}

export default fp(signInPlugin, { name: 'signin', fastify: '5.x', dependencies: ['session', 'discovery', 'pages', 'tokens'] })
