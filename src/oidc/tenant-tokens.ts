// ID tokens of an issuer template (`common`/`organizations` on any Entra cloud): openid-client
// compares an ID token's `iss` with the discovered issuer, which here is the template itself, so
// those tokens are taken out of the token response before it sees them and verified here
// instead: signature from the discovered JWKS (RS256), `iss` = the template filled with the
// token's own `tid`, `aud`, `azp`, `exp`, `iat`. Sign-in and refresh read the verified claims.
import { AsyncLocalStorage } from 'node:async_hooks'
import { createRemoteJWKSet, customFetch, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose'
import type { CustomFetch } from 'openid-client'
import type { Claims } from '../principal/claims.js'
import { issuerForTenant } from './issuer.js'

/** What a token response carried, for the grant that is running. */
interface Capture { idToken?: string, claims?: Claims, error?: Error }
const captures = new AsyncLocalStorage<Capture>()

export class TenantIdTokenError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TenantIdTokenError'
  }
}

/** Set once discovery has found the template; until then the fetch passes everything through. */
export interface TemplateHolder {
  template?: { issuer: string, tokenEndpoint: string, verify: (idToken: string) => Promise<Claims> }
}

/** The verifier of a template issuer's ID tokens. */
export function templateVerifier (opts: { issuer: string, jwksUri: string, clientId: string, clockToleranceSeconds: number, fetch: CustomFetch }): (idToken: string) => Promise<Claims> {
  const keys = createRemoteJWKSet(new URL(opts.jwksUri), { [customFetch]: opts.fetch as never })
  return async (idToken) => {
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(idToken, keys, { audience: opts.clientId, algorithms: ['RS256'], clockTolerance: opts.clockToleranceSeconds, requiredClaims: ['iss', 'sub', 'iat', 'exp'] }))
    } catch (err) {
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new TenantIdTokenError(`the ID token's ${err.claim} claim is not acceptable`)
      if (err instanceof joseErrors.JWTExpired) throw new TenantIdTokenError('the ID token has expired')
      throw new TenantIdTokenError('the ID token signature or format is not valid')
    }
    const own = issuerForTenant(opts.issuer, typeof payload.tid === 'string' ? payload.tid : undefined)
    if (own === undefined || payload.iss !== own) throw new TenantIdTokenError('the ID token\'s iss is not its own tenant\'s issuer (iss and tid disagree)')
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== opts.clientId) throw new TenantIdTokenError('the ID token\'s azp claim is not acceptable')
    return payload as Claims
  }
}

/** The fetch for a template issuer's configuration: ID tokens leave the token endpoint's answers here. */
export function templateFetch (fetch: CustomFetch, holder: TemplateHolder): CustomFetch {
  return async (url, init) => {
    const res = await fetch(url, init)
    const template = holder.template
    if (template === undefined || url !== template.tokenEndpoint || !res.ok) return res
    const body = await res.json() as Record<string, unknown>
    if (typeof body.id_token === 'string') {
      const capture = captures.getStore()
      const idToken = body.id_token
      delete body.id_token
      if (capture !== undefined) {
        capture.idToken = idToken
        try {
          capture.claims = await template.verify(idToken)
        } catch (err) {
          capture.error = err as Error
        }
      }
    }
    const headers = new Headers(res.headers)
    headers.delete('content-length')
    headers.delete('content-encoding')
    return new Response(JSON.stringify(body), { status: res.status, statusText: res.statusText, headers })
  }
}

/**
 * Runs a grant and returns, with its result, the ID token of its response verified as above
 * (for a configuration without a template: undefined, openid-client verified it). A token that
 * fails verification fails the grant.
 */
export async function withTenantIdToken<T> (templated: boolean, fn: () => Promise<T>): Promise<{ result: T, idToken?: string, claims?: Claims }> {
  if (!templated) return { result: await fn() }
  const capture: Capture = {}
  const result = await captures.run(capture, fn)
  if (capture.error !== undefined) throw capture.error
  return { result, idToken: capture.idToken, claims: capture.claims }
}
