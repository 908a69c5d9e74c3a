// API clients: `Authorization: Bearer <JWT>`, an access token issued by the configured issuer
// for this app's API (never its ID token), passes without a session, under the same rules. Any other bearer value (LibreChat's SPA
// sends its own JWT) is not ours: it is left alone and the request is judged by its session.
import fp from 'fastify-plugin'
import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Claims } from '../principal/claims.js'
import { bearerPrincipal, StringPool, type Principal } from '../principal/principal.js'

export type BearerResult =
  | { kind: 'none' }
  | { kind: 'invalid', reason: string }
  | { kind: 'valid', principal: Principal }

export interface Bearer { authenticate: (request: FastifyRequest) => Promise<BearerResult> }

declare module 'fastify' {
  interface FastifyInstance {
    bearer: Bearer
  }
}

const NONE: BearerResult = { kind: 'none' }
const CACHE_MAX = 1000

/** Which issuers name this app's tokens: the configured one, Entra's v1 form, or a tenant's. */
export function expectedIssuers (config: Pick<GatewayConfig, 'issuer' | 'multiTenant'>, tid: string | undefined): string[] {
  const out = [config.issuer]
  if (tid !== undefined) {
    if (config.multiTenant) out.push(config.issuer.replace(/\/(common|organizations|consumers|\{tenantid\})\//i, `/${tid}/`))
    if (new URL(config.issuer).hostname === 'login.microsoftonline.com') out.push(`https://sts.windows.net/${tid}/`)
  }
  return out
}

/**
 * Why a verified token for this app is still not an access token for its API, or undefined.
 * An ID token for this client has the same iss and aud; only the claims tell them apart
 * (Entra's guidance for APIs): `nonce`/`at_hash`/`c_hash` exist only in ID tokens, and an access
 * token carries its permissions in `scp` (delegated) or `roles` (app-only).
 */
export function notAnAccessToken (claims: JWTPayload): string | undefined {
  if (claims.nonce !== undefined || claims.at_hash !== undefined || claims.c_hash !== undefined) return 'this is an ID token, not an access token for this API'
  const scp = claims.scp
  const roles = claims.roles
  const hasScp = typeof scp === 'string' && scp.trim() !== ''
  const hasRoles = Array.isArray(roles) && roles.length > 0
  if (!hasScp && !hasRoles) return 'the token has no scp or roles claim, so it is not an access token for this API'
  return undefined
}

async function bearerPlugin (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  const audiences = [config.clientId, `api://${config.clientId}`]
  let jwks: ReturnType<typeof createRemoteJWKSet> | undefined
  /** Verified tokens until they expire: a verification per request would dominate API calls. */
  const cache = new Map<string, { result: BearerResult, exp: number }>()
  const pool = new StringPool()

  async function verify (token: string): Promise<BearerResult> {
    let claims: JWTPayload
    try {
      claims = decodeJwt(token)
    } catch {
      return NONE
    }
    const tid = typeof claims.tid === 'string' ? claims.tid.toLowerCase() : undefined
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    const issuers = expectedIssuers(config, tid)
    // Not issued for this app by this issuer: not ours to judge.
    if (typeof claims.iss !== 'string' || !issuers.includes(claims.iss) || !aud.some(a => typeof a === 'string' && audiences.includes(a))) return NONE

    if (jwks === undefined) {
      const uri = (await app.idp.get()).serverMetadata().jwks_uri
      if (uri === undefined) return { kind: 'invalid', reason: 'the identity provider publishes no keys' }
      // Through the outbound proxy, like every call to the IdP.
      jwks = createRemoteJWKSet(new URL(uri), { [customFetch]: app.egress.fetch })
    }
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, jwks, { issuer: issuers, audience: audiences, algorithms: ['RS256'], clockTolerance: config.clockToleranceSeconds, requiredClaims: ['exp'] }))
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { kind: 'invalid', reason: 'the token has expired' }
      if (err instanceof joseErrors.JWTClaimValidationFailed) return { kind: 'invalid', reason: `the token's ${err.claim} claim is not acceptable` }
      return { kind: 'invalid', reason: 'the token signature or format is not valid' }
    }
    const notAccess = notAnAccessToken(payload)
    if (notAccess !== undefined) return { kind: 'invalid', reason: notAccess }
    if (config.allowedTenants !== undefined && (tid === undefined || !config.allowedTenants.includes(tid))) {
      return { kind: 'invalid', reason: 'the token is from a tenant that may not use this application' }
    }
    return { kind: 'valid', principal: bearerPrincipal(payload as Claims, config.requiredRole?.path, pool, Date.now(), config.claimNames) }
  }

  async function authenticate (request: FastifyRequest): Promise<BearerResult> {
    const header = request.headers.authorization
    if (header === undefined || !header.startsWith('Bearer ')) return NONE
    const token = header.slice(7).trim()
    const now = Date.now()
    const hit = cache.get(token)
    if (hit !== undefined && hit.exp > now) return hit.result
    const result = await verify(token)
    if (result.kind === 'valid') {
      if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
      const exp = (decodeJwt(token).exp ?? 0) * 1000
      cache.set(token, { result, exp })
    }
    return result
  }

  app.decorate('bearer', { authenticate })
}

export default fp(bearerPlugin, { name: 'bearer', fastify: '5.x', dependencies: ['discovery', 'egress'] })
