/**
 * The token endpoint of the dev IdP, in front of oidc-provider: counters, latency and holds for
 * tests, and Entra's one-resource-per-access-token rule.
 *
 * Access tokens for other resources (Graph, SharePoint, any API), the way Entra does it:
 * - A scope that is an absolute http(s) URL names a resource and a permission: the resource is
 *   the URL without its last path segment, the permission is that segment
 *   (`https://graph.microsoft.com/User.Read` -> `https://graph.microsoft.com` + `User.Read`,
 *   `http://127.0.0.1:4567/.default`, `https://analysis.windows.net/powerbi/api/Report.Read.All`).
 * - A token request (authorization_code or refresh_token grant) whose `scope` names such scopes
 *   gets an access token for that resource: RS256 JWT, `typ: JWT`, signed with this IdP's key,
 *   `aud` = the resource, `scp` = the permission names, `oid`, `tid`, `sub`, `name`,
 *   `preferred_username`, `azp`, `ver: 2.0`, `iat`/`nbf`/`exp` (accessTokenTtlSeconds). No
 *   `roles`: in Entra they are the app roles of the RESOURCE, which this IdP has none of (so do
 *   not read your app's roles from a Graph token). `/.default` gets `scp` from
 *   `StartIdpOptions.defaultScopes[resource]` (default `user_impersonation`). The ID token and
 *   the refresh token are issued as usual; the response's `scope` lists the resource's scopes
 *   (full URLs) and the OIDC ones.
 * - Scopes of two resources in one token request: 400 `invalid_scope`, `AADSTS70011` ("not
 *   compatible with each other"); so is `/.default` next to another scope of the same resource.
 *   openid/profile/email/offline_access mix with any one resource.
 * - At sign-in (/authorize) URL scopes are accepted, of several resources even (Entra asks
 *   consent for all of them there). Redeeming the code without a URL scope in the token request
 *   targets the resource of the FIRST URL scope of the authorization request (Microsoft's
 *   documented rule); with URL scopes in the token request, those decide.
 * - A refresh token is not tied to a resource: `grant_type=refresh_token` with the scopes of any
 *   resource works. A refresh without URL scopes targets what the sign-in targeted (the app's
 *   own token, aud = client id, when the sign-in named no resource).
 * - No permission model: every scope of every resource is granted.
 * How: oidc-provider does the protocol (client authentication, code, PKCE, refresh-token
 * rotation, ID token) and never sees the URL scopes as grantable; the http wrapper in front of
 * the token endpoint (makeTokenEndpoint) checks the scopes, drops them from a refresh request
 * before the provider reads it (it would refuse scopes the refresh token was not issued with)
 * and, in a Koa middleware after the grant ran, replaces `access_token` with a JWT minted with
 * jose for the resource. A code learns its resource when oidc-provider saves it (the
 * `authorization_code.saved` event, reading the request's scope through `Provider.ctx`).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SignJWT, decodeJwt } from 'jose'
import { readBodyBuffer } from '../http.js'
import { pairwiseSub } from './claims.js'
import { JWT_BEARER, makeAssertionVerifier, type ClientCredentials } from './client-assertion.js'
import { OidcProvider, type ProviderContext } from './oidc.js'
import { describeError, sendJson } from './respond.js'
import type { IdpUser, TokenHold, TokenRequestCounts } from './types.js'

/** Longest `setSlow` delay accepted (ms). */
export const MAX_TOKEN_DELAY_MS = 60_000

/** Scopes that mix with the scopes of any one resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access'])

/** oidc-provider's own limit for request bodies. */
const TOKEN_BODY_LIMIT = 56 * 1024
/** Authorization codes live 10 minutes (ttl.AuthorizationCode). */
const CODE_TTL_MS = 600_000
/** Bound on remembered code/refresh-token targets (a long demo must not grow without end). */
const MAX_REMEMBERED = 10_000

interface ResourceScope {
  /** As requested: `https://graph.microsoft.com/User.Read`. */
  value: string;
  /** `https://graph.microsoft.com`: the URL without its last path segment. */
  resource: string;
  /** `User.Read`: the last path segment. */
  name: string;
}

/** An Entra resource scope, or undefined for anything else (openid, User.Read, api://x/y, ...). */
function parseResourceScope (value: string): ResourceScope | undefined {
  if (!/^https?:\/\//i.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.search || url.hash || url.username || url.password) return undefined
  const slash = url.pathname.lastIndexOf('/')
  const name = url.pathname.slice(slash + 1)
  if (!name) return undefined
  return { value, resource: url.origin + url.pathname.slice(0, slash), name }
}

function resourceScopesOf (scope: unknown): ResourceScope[] {
  if (typeof scope !== 'string') return []
  const out: ResourceScope[] = []
  for (const value of scope.split(/\s+/)) {
    const parsed = value ? parseResourceScope(value) : undefined
    if (parsed) out.push(parsed)
  }
  return out
}

/** Entra's rules for the scopes of one token request: the AADSTS70011 text, or undefined. */
function resourceScopeProblem (requested: ResourceScope[], scope: string): string | undefined {
  if (new Set(requested.map((s) => s.resource)).size > 1) {
    return `AADSTS70011: The provided value for the input parameter 'scope' is not valid. One or more scopes in '${scope}' are not compatible with each other.`
  }
  const names = new Set(requested.map((s) => s.name))
  if (names.has('.default') && names.size > 1) {
    return `AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid: /.default cannot be combined with other scopes of the same resource.`
  }
  return undefined
}

/** Entra's error body (`error_codes`, trace ids, and the same details in error_description). */
function entraError (error: string, code: number | undefined, description: string): Record<string, unknown> {
  const traceId = randomUUID()
  const correlationId = randomUUID()
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  return {
    error,
    error_description: `${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: code === undefined ? [] : [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  }
}

interface TokenRequestInfo {
  grantType: string;
  code?: string;
  refreshToken?: string;
  /** The resource this response's access token is for; undefined: the app's own token. */
  target?: ResourceScope[];
  /** What a refresh without URL scopes, with the refresh token of this response, targets. */
  sticky?: ResourceScope[];
}
export interface TokenEndpoint {
  counts: TokenRequestCounts;
  /** Token requests per client authentication method the client used (see Idp.tokenAuthMethods). */
  authMethods: Record<string, number>;
  /** Reads the request, answers what oidc-provider must not see, then hands a copy to it. */
  handle(req: IncomingMessage, res: ServerResponse, providerCallback: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<void>;
  /** provider.use(): rewrites token responses after the grant ran. */
  middleware(ctx: ProviderContext, next: () => Promise<void>): Promise<void>;
  /** provider.on('authorization_code.saved'): remembers the resource a code was asked for. */
  onCodeSaved(code: { jti?: string }): void;
  setDelay(ms: number): void;
  hold(grantType: string): TokenHold;
  cancelDelays(): void;
  markRevoked(refreshTokens: string[]): void;
}

export function makeTokenEndpoint (deps: {
  issuer: string;
  /** Organizations realm: the `iss` of a user's tokens (their tenant's); the ID token is re-signed with it. */
  issuerOf?: (user: IdpUser | undefined) => string;
  tenantId: string;
  signingKey: CryptoKey;
  kid: string;
  accessTokenTtl: number;
  defaultScopes: Record<string, string[]>;
  keepRotatedRefreshTokens: boolean;
  findUserByOid: (oid: unknown) => IdpUser | undefined;
  isDown: () => boolean;
  /** A client's registered secret, certificates and federated credentials. */
  clientCredentials: (clientId: string) => (ClientCredentials & { secret: string }) | undefined;
}): TokenEndpoint {
  const verifyAssertion = makeAssertionVerifier({ tokenEndpoint: `${deps.issuer}/token`, clockToleranceSeconds: 60 })
  const counts: TokenRequestCounts = { authorization_code: 0, refresh_token: 0 }
  const authMethods: Record<string, number> = {}
  let delayMs = 0
  const sleepers = new Set<() => void>()
  let held: { grantType: string; gate: Promise<void>; arrive: () => void } | undefined
  // Keyed by the request object handed to oidc-provider (Koa's ctx.req).
  const pending = new WeakMap<IncomingMessage, TokenRequestInfo>()
  const codeTargets = new Map<string, { scopes: ResourceScope[]; expiresAt: number }>()
  const refreshTargets = new Map<string, ResourceScope[]>()
  const revoked = new Set<string>()

  const remember = <V>(map: Map<string, V>, key: string, value: V): void => {
    map.delete(key)
    map.set(key, value)
    if (map.size > MAX_REMEMBERED) {
      const oldest = map.keys().next()
      if (!oldest.done) map.delete(oldest.value)
    }
  }

  const pause = (ms: number): Promise<void> => {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const cancel = (): void => {
        clearTimeout(timer)
        sleepers.delete(cancel)
        reject(new Error('the IdP was closed'))
      }
      const timer = setTimeout(() => {
        sleepers.delete(cancel)
        resolve()
      }, ms)
      sleepers.add(cancel)
    })
  }

  /** Waits for `gate`, or rejects when the IdP closes. */
  const waitFor = (gate: Promise<void>): Promise<void> => new Promise((resolve, reject) => {
    const cancel = (): void => {
      sleepers.delete(cancel)
      reject(new Error('the IdP was closed'))
    }
    sleepers.add(cancel)
    gate.then(() => {
      sleepers.delete(cancel)
      resolve()
    }, reject)
  })

  const scpFor = (target: ResourceScope[]): string[] => {
    const names = [...new Set(target.map((s) => s.name))]
    if (!names.includes('.default')) return names
    const resource = target[0]!.resource
    return deps.defaultScopes[resource] ?? deps.defaultScopes[`${resource}/`] ?? ['user_impersonation']
  }

  const mint = async (target: ResourceScope[], issued: { accountId: string; clientId: string; grantId?: string }): Promise<string> => {
    const user = deps.findUserByOid(issued.accountId)
    const now = Math.floor(Date.now() / 1000)
    const claims: Record<string, unknown> = {
      aio: issued.grantId, // as in the app's tokens: the grant, for revocation checks
      azp: issued.clientId,
      azpacr: '1',
      name: user?.name,
      oid: issued.accountId,
      preferred_username: user?.preferredUsername,
      scp: scpFor(target).join(' '),
      sub: pairwiseSub(issued.accountId, issued.clientId),
      tid: user?.tenantId ?? deps.tenantId,
      uti: randomBytes(16).toString('base64url'),
      ver: '2.0',
    }
    for (const [key, value] of Object.entries(claims)) if (value === undefined) delete claims[key]
    return await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: deps.kid })
      .setIssuer(deps.issuerOf ? deps.issuerOf(user) : deps.issuer)
      .setAudience(target[0]!.resource)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + deps.accessTokenTtl)
      .sign(deps.signingKey)
  }

  return {
    counts,
    authMethods,

    async handle (req, res, providerCallback) {
      let body: Buffer
      try {
        body = await readBodyBuffer(req, TOKEN_BODY_LIMIT)
      } catch (err) {
        if (!res.headersSent) sendJson(res, 400, { error: 'invalid_request', error_description: describeError(err) })
        return
      }
      const form = /^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')
        ? new URLSearchParams(body.toString('utf8'))
        : undefined
      const grantType = form?.get('grant_type') ?? ''
      if (grantType) counts[grantType] = (counts[grantType] ?? 0) + 1
      // How the client authenticated, as oidc-provider tells them apart: both are accepted (as by
      // Entra). A client assertion is counted once checked: private_key_jwt or federated.
      const assertion = form?.get('client_assertion_type') === JWT_BEARER ? form.get('client_assertion') ?? '' : undefined
      const method = /^basic /i.test(req.headers.authorization ?? '') ? 'client_secret_basic' : form?.has('client_secret') === true ? 'client_secret_post' : assertion !== undefined ? undefined : 'none'
      if (method !== undefined) authMethods[method] = (authMethods[method] ?? 0) + 1
      if (deps.isDown()) {
        sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'The identity provider is down (simulated).' }, { 'Retry-After': '1' })
        return
      }
      try {
        await pause(delayMs)
        const hold = held
        if (hold && hold.grantType === grantType) {
          hold.arrive()
          await waitFor(hold.gate)
        }
      } catch {
        res.destroy()
        return
      }

      const info: TokenRequestInfo = { grantType }
      let forward = body
      if (form && assertion !== undefined) {
        // Checked here as Entra does (client-assertion.ts); what passes reaches oidc-provider as
        // the client's secret, so its protocol handling stays as for every other client.
        const clientId = form.get('client_id') ?? ''
        const registered = deps.clientCredentials(clientId)
        const checked = await verifyAssertion(clientId, assertion, registered)
        if (!checked.ok || registered === undefined) {
          authMethods.refused_assertion = (authMethods.refused_assertion ?? 0) + 1
          if (!checked.ok) sendJson(res, checked.status, entraError(checked.error, checked.code, checked.description))
          else sendJson(res, 401, entraError('invalid_client', 700016, `AADSTS700016: Application with identifier '${clientId}' was not found in the directory.`))
          return
        }
        authMethods[checked.method] = (authMethods[checked.method] ?? 0) + 1
        form.delete('client_assertion')
        form.delete('client_assertion_type')
        form.set('client_secret', registered.secret)
        forward = Buffer.from(form.toString())
      }
      if (form && (grantType === 'authorization_code' || grantType === 'refresh_token')) {
        const scope = form.get('scope') ?? ''
        const requested = resourceScopesOf(scope)
        let stored: ResourceScope[] | undefined
        if (grantType === 'authorization_code') {
          info.code = form.get('code') ?? undefined
          const entry = info.code === undefined ? undefined : codeTargets.get(info.code)
          stored = entry && entry.expiresAt > Date.now() ? entry.scopes : undefined
        } else {
          info.refreshToken = form.get('refresh_token') ?? undefined
          stored = info.refreshToken === undefined ? undefined : refreshTargets.get(info.refreshToken)
        }
        const target = requested.length ? requested : stored
        const problem = target && resourceScopeProblem(target, requested.length ? scope : target.map((s) => s.value).join(' '))
        if (problem) {
          sendJson(res, 400, entraError('invalid_scope', 70011, problem))
          return
        }
        info.target = target
        info.sticky = grantType === 'authorization_code' ? target : stored
        if (grantType === 'refresh_token' && requested.length) {
          // oidc-provider refuses scopes the refresh token was not issued with. Without `scope`
          // it refreshes with the token's own scopes: the ID token is the same as at sign-in.
          form.delete('scope')
          forward = Buffer.from(form.toString())
        }
      }
      const forwarded = replayRequest(req, forward)
      pending.set(forwarded, info)
      await providerCallback(forwarded, res)
    },

    async middleware (ctx, next) {
      await next()
      const info = pending.get(ctx.req)
      if (!info) return
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body as Record<string, unknown> : undefined
      if (!body) return
      if (ctx.status === 200 && typeof body.access_token === 'string') {
        if (deps.issuerOf && typeof body.id_token === 'string') {
          // oidc-provider signs with the template; Entra's tokens carry the user's tenant's issuer.
          const claims = decodeJwt(body.id_token)
          claims.iss = deps.issuerOf(deps.findUserByOid(ctx.oidc.entities?.AccessToken?.accountId ?? claims.oid))
          body.id_token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: deps.kid }).sign(deps.signingKey)
        }
        if (info.code !== undefined) codeTargets.delete(info.code)
        if (info.refreshToken !== undefined && !deps.keepRotatedRefreshTokens) refreshTargets.delete(info.refreshToken)
        if (typeof body.refresh_token === 'string' && info.sticky) remember(refreshTargets, body.refresh_token, info.sticky)
        if (info.target) {
          const issued = ctx.oidc.entities?.AccessToken
          if (!issued?.accountId || !issued.clientId) throw new Error('token endpoint: no AccessToken entity after the grant')
          body.access_token = await mint(info.target, { accountId: issued.accountId, clientId: issued.clientId, grantId: issued.grantId })
          body.token_type = 'Bearer'
          body.expires_in = deps.accessTokenTtl
          const oidcScopes = String(body.scope ?? '').split(' ').filter((s) => OIDC_SCOPES.has(s))
          body.scope = [...new Set(info.target.map((s) => s.value)), ...oidcScopes].join(' ')
        }
      } else if (body.error === 'invalid_client') {
        // Entra names a wrong client secret by its code (a Secret ID pasted as the value, or a typo).
        Object.assign(body, entraError('invalid_client', 7000215,
          "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + String(ctx.oidc.params?.client_id ?? '') + "'."))
      } else if (body.error === 'invalid_grant' && info.refreshToken !== undefined && revoked.has(info.refreshToken)) {
        Object.assign(body, entraError('invalid_grant', 50173,
          'AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.'))
      }
    },

    onCodeSaved (code) {
      // Runs inside the authorization request; Provider.ctx is its Koa context (AsyncLocalStorage).
      const ctx = OidcProvider.ctx
      const requested = resourceScopesOf(ctx?.oidc?.params?.scope)
      if (!code.jti || !requested.length) return
      const now = Date.now()
      for (const [key, entry] of codeTargets) if (entry.expiresAt <= now) codeTargets.delete(key)
      // Several resources at /authorize (consent for all): the token is for the first one.
      const first = requested[0]!.resource
      remember(codeTargets, code.jti, { scopes: requested.filter((s) => s.resource === first), expiresAt: now + CODE_TTL_MS })
    },

    setDelay (ms) {
      delayMs = Number.isFinite(ms) ? Math.min(Math.max(0, Math.floor(ms)), MAX_TOKEN_DELAY_MS) : 0
    },

    hold (grantType) {
      let open!: () => void
      const gate = new Promise<void>((resolve) => { open = resolve })
      let count = 0
      const waiters: Array<{ n: number; resolve: () => void }> = []
      const arrive = (): void => {
        count++
        for (const w of waiters.filter((x) => x.n <= count)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve()
        }
      }
      const hold = { grantType, gate, arrive }
      held = hold
      return {
        arrivals: (n) => n <= count ? Promise.resolve() : new Promise<void>((resolve) => { waiters.push({ n, resolve }) }),
        release () {
          if (held === hold) held = undefined
          open()
        },
      }
    },

    cancelDelays () {
      for (const cancel of [...sleepers]) cancel()
    },

    markRevoked (refreshTokens) {
      for (const value of refreshTokens) {
        revoked.add(value)
        refreshTargets.delete(value)
      }
    },
  }
}

/**
 * A fresh request carrying `body` in place of the (already read) original, for oidc-provider,
 * which reads the body itself. Same socket, method, url and headers; Content-Length fixed up.
 */
function replayRequest (req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new http.IncomingMessage(req.socket)
  copy.method = req.method
  copy.url = req.url
  copy.httpVersion = req.httpVersion
  copy.httpVersionMajor = req.httpVersionMajor
  copy.httpVersionMinor = req.httpVersionMinor
  const headers = { ...req.headers, 'content-length': String(body.length) }
  delete headers['transfer-encoding']
  copy.headers = headers
  copy.rawHeaders = Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : v === undefined ? [] : [k, v]))
  ;(copy as IncomingMessage & { originalUrl?: string }).originalUrl = (req as IncomingMessage & { originalUrl?: string }).originalUrl
  copy.complete = true
  copy.push(body)
  copy.push(null)
  return copy
}
