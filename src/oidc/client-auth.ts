// How the gateway authenticates at the token endpoint, as openid-client's ClientAuth: the
// client secret (post or Basic), a certificate's client assertion, or a federated token. Every
// token request (code, refresh, per-resource) goes through the one Configuration, so through
// this. Only token-endpoint calls run it; the proxy's requests never do.
import { randomUUID } from 'node:crypto'
import { stat } from 'node:fs/promises'
import * as client from 'openid-client'
import type { IdentityProviderSettings } from '../config.js'
import { CertificateFileError, FederatedTokenError, loadCertificateFile, readFederatedToken, type ClientCredentialSettings, type LoadedCertificate } from '../config/client-credential.js'

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Entra: keep assertions short-lived ("5-10 minutes after nbf" at most). */
export const ASSERTION_LIFETIME_SECONDS = 300

/** The credential could not be produced (a file gone or broken): not the IdP's answer. */
export class ClientCredentialError extends Error {
  constructor (message: string, opts?: { cause?: unknown }) {
    super(message, opts)
    this.name = 'ClientCredentialError'
  }
}

/** The ClientCredentialError behind an openid-client error (it wraps what a ClientAuth throws). */
export function credentialFailure (err: unknown): ClientCredentialError | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ClientCredentialError) return e
  }
  return undefined
}

export type CredentialEvent = (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void

export function clientAuthentication (settings: Pick<IdentityProviderSettings, 'clientSecret' | 'clientCredential' | 'tokenEndpointAuthMethod'>, onEvent: CredentialEvent = () => {}): client.ClientAuth {
  const credential = settings.clientCredential
  if (credential.kind === 'certificate') return certificateAuth(credential, onEvent)
  if (credential.kind === 'federated') return federatedAuth(credential.tokenFile)
  // OPENID_TOKEN_ENDPOINT_AUTH_METHOD: the secret in the form body (openid-client's default) or in Basic.
  return settings.tokenEndpointAuthMethod === 'client_secret_basic' ? client.ClientSecretBasic(settings.clientSecret) : client.ClientSecretPost(settings.clientSecret)
}

/**
 * A workload identity token, read before each use: the platform rewrites the file (AKS about
 * hourly) and the old token stops being accepted. Sent as is: Entra checks it against the app
 * registration's federated credentials (issuer, subject, audience api://AzureADTokenExchange).
 */
function federatedAuth (tokenFile: string): client.ClientAuth {
  return async (_as, c, body) => {
    let token: string
    try {
      token = readFederatedToken(tokenFile)
    } catch (err) {
      throw new ClientCredentialError(err instanceof FederatedTokenError ? err.message : `AZURE_FEDERATED_TOKEN_FILE: ${(err as Error).message}`, { cause: err })
    }
    body.set('client_id', c.client_id)
    body.set('client_assertion_type', JWT_BEARER)
    body.set('client_assertion', token)
  }
}

type Certificate = Extract<ClientCredentialSettings, { kind: 'certificate' }>

/** What identifies one version of the file: a rotation (a rename or a symlink swap, as Kubernetes does it) changes it. */
function stamp (s: { mtimeMs: number, ctimeMs: number, size: number, ino: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`
}

/**
 * A certificate's `private_key_jwt` assertion as Entra specifies it: PS256, `x5t#S256` and
 * `x5t` of the certificate, `aud` the token endpoint (not the issuer, openid-client's default),
 * `iss` = `sub` = the client id, a fresh `jti`, `nbf`/`iat` now, a short `exp`. The file is
 * stat'ed before each assertion (token-endpoint calls only) and read again when it changed, so a
 * rotated certificate is used without a restart; a broken new file keeps the last good one.
 */
function certificateAuth (credential: Certificate, onEvent: CredentialEvent): client.ClientAuth {
  let current: { stamp: string, loaded: LoadedCertificate, signingKey: CryptoKey } | undefined
  let failedStamp: string | undefined

  const load = async (): Promise<{ loaded: LoadedCertificate, signingKey: CryptoKey }> => {
    let now: string
    try {
      now = stamp(await stat(credential.path))
    } catch (err) {
      if (current !== undefined) {
        if (failedStamp !== 'missing') onEvent('warn', 'client_certificate_unreadable', { variable: credential.variable, path: credential.path, detail: (err as Error).message, using: current.loaded.sha1Hex })
        failedStamp = 'missing'
        return current
      }
      throw new ClientCredentialError(`${credential.variable} names ${credential.path}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, { cause: err })
    }
    if (current?.stamp === now) return current
    try {
      const loaded = loadCertificateFile(credential)
      const signingKey = await crypto.subtle.importKey('pkcs8', loaded.key.export({ format: 'der', type: 'pkcs8' }), { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign'])
      const rotated = current !== undefined
      current = { stamp: now, loaded, signingKey }
      failedStamp = undefined
      onEvent('info', rotated ? 'client_certificate_rotated' : 'client_certificate_loaded', { variable: credential.variable, thumbprint: loaded.sha1Hex, x5tS256: loaded.x5tS256, notAfter: loaded.notAfter.toISOString() })
      return current
    } catch (err) {
      const message = err instanceof CertificateFileError ? err.message : `${credential.variable}: ${(err as Error).message}`
      // Half-written during a rotation, or a wrong file: keep signing with the last good one.
      if (current !== undefined) {
        if (failedStamp !== now) onEvent('warn', 'client_certificate_unreadable', { variable: credential.variable, path: credential.path, detail: message, using: current.loaded.sha1Hex })
        failedStamp = now
        return current
      }
      throw new ClientCredentialError(message, { cause: err })
    }
  }

  return async (as, c, body, headers) => {
    const { loaded, signingKey } = await load()
    const tokenEndpoint = as.token_endpoint
    if (tokenEndpoint === undefined) throw new ClientCredentialError('the identity provider\'s metadata names no token_endpoint')
    const auth = client.PrivateKeyJwt(signingKey, {
      [client.modifyAssertion]: (header, payload) => {
        header.typ = 'JWT'
        header['x5t#S256'] = loaded.x5tS256
        header.x5t = loaded.x5t
        delete header.kid
        // Entra wants one audience, the token endpoint; a GUID jti, as MSAL sends.
        payload.aud = tokenEndpoint
        payload.jti = randomUUID()
        payload.exp = (typeof payload.nbf === 'number' ? payload.nbf : Math.floor(Date.now() / 1000)) + ASSERTION_LIFETIME_SECONDS
      }
    })
    await auth(as, c, body, headers)
  }
}
