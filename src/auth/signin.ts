// Sign-in: starting the authorization-code flow and completing it at the callback.
// The login transaction lives in a sealed cookie of the browser that started it, keyed by
// state, so a callback is accepted only in that browser, only once, only for 10 minutes.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import { isNavigation } from '../policy/request-kind.js'
import { routeSiteFor, safeReturnPath, safeReturnTarget } from '../policy/return-path.js'
import { normalizeHost } from '../policy/routes.js'
import { namedOriginalRequest, trustedPeers } from '../policy/original-request.js'
import { escapeHtml } from '../pages/render.js'
import { beginSignIn, completeSignIn, SignInError, type LoginTransaction, type SignInResult } from '../oidc/flow.js'
import { explainEntraError } from '../oidc/entra-errors.js'
import type { Principal } from '../principal/principal.js'
import { readPrincipal } from '../tokens/principal.js'
import { loginHintOf, revocationOf, TokenJar } from '../tokens/jar.js'
import type { Configuration } from 'openid-client'
import { readCookie, serializeCookie } from '../session/cookies.js'
import { boundedReturnPath, LOGIN_COOKIE_MAX_AGE_MS, readTransactions, sealTransactions } from './login-cookie.js'
const PROMPTS = new Set(['select_account', 'login'])

/** The request that needs a sign-in, when it is not the one being answered (a proxy handed it over). */
export interface RequestToSignIn { method: string, url: string }

export interface SignIn {
  /**
   * Answers a request that has no session: a redirect to the IdP for a navigation, else 401
   * JSON. `original`: the request a trusted proxy handed over, judged in place of this one.
   */
  requireSignIn: (request: FastifyRequest, reply: FastifyReply, original?: RequestToSignIn) => Promise<FastifyReply>
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
  userinfo_failed: 'Your account details could not be read from the identity provider.',
  client_credential: "This application's own credentials could not be read, so no one can sign in right now.",
  session_revoked: 'Microsoft ended your sign-in session while it was being completed. Please sign in again.'
}

/** Failures that another attempt cannot mend. */
const NO_RETRY = new Set(['tenant_not_allowed', 'token_future', 'client_credential'])

/** What the administrator can do, where the reason says it. */
const ADMIN_HINTS: Record<string, string> = {
  token_future: "Set the gateway host's clock right (NTP); OPENID_CLOCK_TOLERANCE allows a few seconds.",
  tenant_not_allowed: "Add the account's tenant to OPENID_ALLOWED_TENANTS if it may use this application.",
  idp_unavailable: 'The gateway cannot reach the identity provider: check its network path (egress proxy, DNS, firewall).',
  client_credential: "The gateway's certificate or federated token file could not be read: the log line sign_in_failed names the file; `npm run doctor` checks it."
}

async function signInPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const loginCookie = config.loginCookieName
  const cookieFlags = { secure: config.secureCookies, domain: config.cookieDomain }
  const sealer = app.sealer

  // The sites a sign-in may return to (DOMAIN_SERVER's and the host routes' under COOKIE_DOMAIN).
  const siteOrigins = new Set(config.siteOrigins.values())
  const mainHost = config.publicOrigin === '' ? '' : new URL(config.publicOrigin).hostname
  // Host routes no cookie of ours reaches: a browser there could sign in but never stay signed in.
  const bearerOnlyHosts = new Set([...config.routes.hosts.keys()].filter(h => !config.siteOrigins.has(h)))
  /** The configured origin of the host route the request came to; undefined on DOMAIN_SERVER's host (and any other). */
  const routeSiteOf = (request: FastifyRequest): string | undefined =>
    siteOrigins.size < 2 ? undefined : routeSiteFor(config.siteOrigins, config.publicOrigin, request.host)
  // With COOKIE_DOMAIN, the host-only cookies of before go: over http they share the names of
  // the new ones, and an old one sent first would hide the new one.
  const hostOnly = config.hostOnlyCookies
  const clearHostOnlyLogin = hostOnly !== undefined ? serializeCookie(hostOnly.login, '', 0, { secure: config.secureCookies }) : undefined
  const clearHostOnlySession = hostOnly !== undefined ? serializeCookie(hostOnly.session, '', 0, { secure: config.secureCookies }) : undefined

  /** Writes this browser's pending transactions back (or removes the cookie when none is left). */
  function writeLoginCookie (reply: FastifyReply, pending: Map<string, LoginTransaction>): void {
    // Removed before the new one is set, so that where both name the same cookie the new one stays.
    if (clearHostOnlyLogin !== undefined) reply.header('set-cookie', clearHostOnlyLogin)
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

  function signInFailed (request: FastifyRequest, reply: FastifyReply, reason: string, returnTo: string, failure: { idpError?: string, idp?: SignInError['idp'], logDetail?: string } = {}): FastifyReply {
    const { idpError, idp } = failure
    // The log keeps Microsoft's own words; the page says them plainly, with who can fix it.
    request.log.warn({ event: 'sign_in_failed', reason, idpError, idpDescription: idp?.description, detail: failure.logDetail, ip: request.ip }, 'sign-in failed')
    app.metrics.signIns.inc({ result: reason })
    const explained = idp !== undefined ? explainEntraError(idp.error, idp.description) : undefined
    const words = explained?.user ?? SIGN_IN_REASONS[reason] ?? 'The sign-in could not be completed.'
    const retry = explained?.retry ?? !NO_RETRY.has(reason)
    const otherAccount = explained?.otherAccount ?? reason === 'tenant_not_allowed'
    const actions = [
      retry ? `<a class="button" href="${escapeHtml('/oauth2/start?rd=' + encodeURIComponent(returnTo))}">Try signing in again</a>` : '',
      otherAccount ? `<a href="${escapeHtml('/oauth2/start?prompt=select_account&rd=' + encodeURIComponent(returnTo))}">Use a different account</a>` : ''
    ].join('')
    const admin = explained?.admin ?? ADMIN_HINTS[reason]
    return reply.problem({
      status: reason === 'idp_unavailable' ? 503 : 400,
      error: 'sign_in_failed',
      message: words,
      page: {
        title: "Sign-in didn't complete",
        body: `<p>${escapeHtml(words)}</p>${admin !== undefined ? `<p class="admin"><strong>For your administrator:</strong> ${escapeHtml(admin)}</p>` : ''}${actions !== '' ? `<div class="actions">${actions}</div>` : ''}`,
        detail: `Code ${explained?.code ?? idpError ?? reason}${explained !== undefined || idpError !== undefined ? ` (${reason})` : ''} · request id ${request.id}`
      },
      json: { reason, idp_error: idpError, retry, ...(admin !== undefined ? { admin_hint: admin } : {}) }
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
      if (err instanceof SignInError) signInFailed(request, reply, err.reason, transaction.returnTo, { idpError: err.idpError, idp: err.idp, logDetail: err.message })
      else signInFailed(request, reply, 'token_invalid', transaction.returnTo, { logDetail: (err as Error).message })
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
      const revoked = revocationOf(err)
      signInFailed(request, reply, revoked !== undefined ? 'session_revoked' : 'userinfo_failed', transaction.returnTo, { idpError: revoked, logDetail: (err as Error).message })
      return true
    }

    // A new session id at sign-in: whatever id the browser had before (possibly planted)
    // is worth nothing afterwards.
    // A browser signing in again (another account) leaves no tokens of its old session behind.
    if (request.session.user !== undefined) await app.tokens.forget(request)
    // The session cookie below comes after this (onSend), so it is the one that stays.
    if (clearHostOnlySession !== undefined) reply.header('set-cookie', clearHostOnlySession)
    await request.session.regenerate()
    request.session.user = user
    const maxAge = config.reuseTokens ? Math.min(config.sessionExpirySeconds, config.sessionMaxAgeSeconds) : config.sessionExpirySeconds
    request.session.setMaxAge(maxAge * 1000)
    await app.tokens.keep(request, jar.set)
    // So that a sign-out at the IdP (which names only sid and sub) finds this session. Linked
    // before the session is saved: a store that fails in between leaves no session a logout
    // at the IdP could not end.
    await app.idpLogout.link(request)
    await request.session.save()
    app.metrics.signIns.inc({ result: 'success' })
    request.log.info({ event: 'sign_in', user: user.userId, tenant: user.tenantId, ip: request.ip, groupsOverage: user.groupsOverage, authzError: user.authzError }, 'signed in')
    // Checked again: the configured sites may have changed since the sign-in started.
    reply.redirect(safeReturnTarget(transaction.returnTo, siteOrigins), 302)
    return true
  }

  /** With OPENID_AUTO_REDIRECT=false: a page with the sign-in button instead of a redirect. */
  function signInPage (reply: FastifyReply, returnTo: string, status = 401): FastifyReply {
    const href = '/oauth2/start?rd=' + encodeURIComponent(returnTo)
    const icon = config.imageUrl !== undefined || config.logoFile !== undefined ? '<img src="/oauth2/assets/logo" alt="">' : ''
    return reply.page(status, {
      title: `Sign in to ${config.title}`,
      body: `<p>Sign in with your work or school account to continue.</p><div class="actions"><a class="button" id="sign-in" href="${escapeHtml(href)}">${icon}${escapeHtml(config.buttonLabel)}</a><a href="${escapeHtml(href + '&prompt=select_account')}">Use a different account</a></div>`
    })
  }

  /** A host route no cookie reaches: said in plain words, rather than a sign-in that lands elsewhere. */
  function noSignInHere (reply: FastifyReply, host: string): FastifyReply {
    return reply.problem({
      status: 401,
      error: 'sign_in_unavailable',
      message: `Browsers cannot sign in on ${host}: it accepts API bearer tokens only.`,
      page: {
        title: 'Sign-in is not available here',
        body: `<p>This address, ${escapeHtml(host)}, accepts API tokens only: a browser cannot stay signed in here.</p><p class="admin"><strong>For your administrator:</strong> set COOKIE_DOMAIN to a domain that ${escapeHtml(host)} and ${escapeHtml(mainHost)} share, so that the sign-in reaches this host too.</p>`
      }
    })
  }

  async function requireSignIn (request: FastifyRequest, reply: FastifyReply, original: RequestToSignIn = request): Promise<FastifyReply> {
    if (bearerOnlyHosts.size > 0) {
      const host = normalizeHost(request.host)
      if (host !== undefined && bearerOnlyHosts.has(host)) return noSignInHere(reply, host)
    }
    // On a host route's site the way back is absolute: the sign-in completes on DOMAIN_SERVER.
    const site = routeSiteOf(request)
    const returnTo = site === undefined ? safeReturnPath(original.url) : site + safeReturnPath(original.url)
    if (isNavigation(original.method, request.headers)) {
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

  const fromTrustedProxy = trustedPeers(config.trustedProxies)
  /** `/oauth2/start` always goes to the IdP; `/oauth2/sign_in` shows the sign-in page first when OPENID_AUTO_REDIRECT=false (oauth2-proxy's pair of routes). */
  const signInRoute = (alwaysStart: boolean) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const query = request.query as Record<string, unknown>
    const prompt = typeof query.prompt === 'string' && PROMPTS.has(query.prompt) ? query.prompt : undefined
    // Handed over by a proxy in front (nginx's `error_page 401` of forward-auth), with the
    // original request in X-Original-URI/-Method: judged as that request, so an API call stays
    // a 401 and a navigation signs in and comes back to it, query and all (no escaping in nginx).
    // The TCP peer decides, not a header; anyone else's visit is an explicit sign-in, as before.
    if (!alwaysStart && query.rd === undefined && prompt === undefined && fromTrustedProxy(request.socket.remoteAddress)) {
      const named = namedOriginalRequest(request.headers)
      if (named !== undefined && named !== 'invalid') return await requireSignIn(request, reply, named)
    }
    // No rd: back to this site's root (the host route's, when the visit is there).
    const returnTo = safeReturnTarget(query.rd ?? '/', siteOrigins, routeSiteOf(request))
    if (!alwaysStart && !config.autoRedirect && prompt === undefined) return signInPage(reply, returnTo, 200)
    return await startSignIn(request, reply, returnTo, prompt)
  }
  app.get('/oauth2/sign_in', signInRoute(false))
  app.get('/oauth2/start', signInRoute(true))
}

export default fp(signInPlugin, { name: 'signin', fastify: '5.x', dependencies: ['session', 'discovery', 'pages', 'tokens', 'idp-logout'] })
