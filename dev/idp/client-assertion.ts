/**
 * Client assertions at the token endpoint, checked the way Entra checks them, so the gateway's
 * certificate and workload-identity credentials are tested end to end:
 * - an assertion whose `iss` is the client id is a certificate credential: the certificate is
 *   found by the header's `x5t#S256` (or `x5t`) among the certificates registered for the client
 *   (none: 401 invalid_client AADSTS700027), the signature checked with that certificate's key
 *   (RS256 or PS256), `aud` must be exactly the token endpoint, `iss` = `sub` = the client id,
 *   `exp`/`nbf` (AADSTS700024 outside them), and a `jti` is accepted once;
 * - any other assertion is a federated token: it must match one of the client's federated
 *   credentials by issuer, subject and audience (default `api://AzureADTokenExchange`) (none:
 *   400 AADSTS70021 naming what was presented), be signed by a key of that issuer, and not be
 *   expired. It may be presented many times (Entra does not track its jti: AKS reuses one token
 *   for an hour).
 * What passes is handed to oidc-provider as the client's secret (see token-endpoint.ts), so the
 * protocol stays oidc-provider's.
 *
 * Differences from Entra: a federated issuer's keys are given to the IdP (Entra fetches them from
 * the issuer's discovery document); a replayed certificate assertion gets a plain
 * `invalid_client` without an AADSTS code (Entra's exact code for it is not documented here).
 */
import { X509Certificate, createHash } from 'node:crypto'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose'

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const ENTRA_FEDERATION_AUDIENCE = 'api://AzureADTokenExchange'

export interface FederatedCredential {
  issuer: string;
  subject: string;
  /** Default [api://AzureADTokenExchange], as Entra's portal sets it. */
  audiences?: string[];
  /** The issuer's signing keys (Entra reads them from the issuer's jwks_uri). */
  jwks: JSONWebKeySet;
}

export interface ClientCredentials {
  /** X.509 certificates uploaded to the app registration (PEM). */
  certificates: X509Certificate[];
  federated: FederatedCredential[];
}

/** Outcome: the method to count, or an Entra-shaped refusal. */
export type AssertionResult =
  | { ok: true; method: 'private_key_jwt' | 'federated' }
  | { ok: false; status: number; error: string; code: number | undefined; description: string }

const thumbprints = (cert: X509Certificate): { s256: string; s1: string; hex: string } => ({
  s256: createHash('sha256').update(cert.raw).digest('base64url'),
  s1: createHash('sha1').update(cert.raw).digest('base64url'),
  hex: createHash('sha1').update(cert.raw).digest('hex').toUpperCase(),
})

export function makeAssertionVerifier (deps: { tokenEndpoint: string; clockToleranceSeconds: number }) {
  /** jti → expiry (ms): a certificate assertion is good once. */
  const seen = new Map<string, number>()

  const refuse = (status: number, error: string, code: number | undefined, description: string): AssertionResult => ({ ok: false, status, error, code, description })

  return async function verify (clientId: string, assertion: string, credentials: ClientCredentials | undefined): Promise<AssertionResult> {
    let header: ReturnType<typeof decodeProtectedHeader>
    let payload: ReturnType<typeof decodeJwt>
    try {
      header = decodeProtectedHeader(assertion)
      payload = decodeJwt(assertion)
    } catch {
      return refuse(401, 'invalid_client', 50027, 'AADSTS50027: JWT token is invalid or malformed.')
    }
    if (payload.iss === clientId) return await certificate(clientId, assertion, header, payload, credentials?.certificates ?? [])
    return await federated(clientId, assertion, payload, credentials?.federated ?? [])
  }

  async function certificate (clientId: string, assertion: string, header: Record<string, unknown>, payload: Record<string, unknown>, certificates: X509Certificate[]): Promise<AssertionResult> {
    const s256 = header['x5t#S256']
    const s1 = header.x5t
    const cert = certificates.find((c) => {
      const t = thumbprints(c)
      return (typeof s256 === 'string' && s256 === t.s256) || (typeof s1 === 'string' && s1 === t.s1)
    })
    if (cert === undefined) {
      const shown = typeof s1 === 'string' ? Buffer.from(s1, 'base64url').toString('hex').toUpperCase() : typeof s256 === 'string' ? s256 : '(none)'
      return refuse(401, 'invalid_client', 700027, `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`)
    }
    if (Array.isArray(payload.aud) && payload.aud.length > 1) {
      return refuse(401, 'invalid_client', 5002741, `AADSTS5002741: Number of audience values in the provided client credential exceed maximum allowed. ${payload.aud.length} audience values provided, maximum allowed is 1.`)
    }
    try {
      await jwtVerify(assertion, cert.publicKey, {
        algorithms: ['RS256', 'PS256'],
        audience: deps.tokenEndpoint,
        issuer: clientId,
        subject: clientId,
        requiredClaims: ['jti', 'exp', 'nbf'],
        clockTolerance: deps.clockToleranceSeconds,
      })
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired || (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf')) {
        return refuse(401, 'invalid_client', 700024, 'AADSTS700024: Client assertion is not within its valid time range.')
      }
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
        return refuse(401, 'invalid_client', 700027, `AADSTS700027: Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '${thumbprints(cert).hex}']`)
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud') {
        return refuse(401, 'invalid_client', 50027, `AADSTS50027: JWT token is invalid or malformed. [Reason - the audience must be the token endpoint ${deps.tokenEndpoint}.]`)
      }
      return refuse(401, 'invalid_client', 50027, `AADSTS50027: JWT token is invalid or malformed. [Reason - ${(err as Error).message}]`)
    }
    const now = Date.now()
    for (const [jti, until] of seen) if (until < now) seen.delete(jti)
    const jti = String(payload.jti)
    if (seen.has(jti)) return refuse(401, 'invalid_client', undefined, 'The client assertion was already used (its jti was seen before).')
    seen.set(jti, (Number(payload.exp) + deps.clockToleranceSeconds) * 1000)
    return { ok: true, method: 'private_key_jwt' }
  }

  async function federated (_clientId: string, assertion: string, payload: Record<string, unknown>, records: FederatedCredential[]): Promise<AssertionResult> {
    const audiences = Array.isArray(payload.aud) ? payload.aud.map(String) : [String(payload.aud)]
    const record = records.find((r) => r.issuer === payload.iss && r.subject === payload.sub &&
      (r.audiences ?? [ENTRA_FEDERATION_AUDIENCE]).some((a) => audiences.includes(a)))
    if (record === undefined) {
      return refuse(400, 'invalid_request', 70021, `AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: '${String(payload.iss)}'. Assertion Subject: '${String(payload.sub)}'. Assertion Audience: '${audiences.join(',')}'.`)
    }
    try {
      await jwtVerify(assertion, createLocalJWKSet(record.jwks), { issuer: record.issuer, subject: record.subject, clockTolerance: deps.clockToleranceSeconds, requiredClaims: ['exp'] })
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return refuse(400, 'invalid_request', 700024, 'AADSTS700024: Client assertion is not within its valid time range.')
      return refuse(401, 'invalid_client', 50013, `AADSTS50013: Assertion failed signature validation. [Reason - ${(err as Error).message}]`)
    }
    return { ok: true, method: 'federated' }
  }
}

export function parseCertificates (pems: readonly string[]): X509Certificate[] {
  return pems.map((pem) => new X509Certificate(pem))
}
