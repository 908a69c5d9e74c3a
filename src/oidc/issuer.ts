// Entra's multi-tenant endpoints (`common`, `organizations`) publish an issuer template,
// `https://<login host>/{tenantid}/v2.0`: each token's issuer is the template filled with the
// token's own `tid`. Handled here for any host (openid-client does it only for
// login.microsoftonline.com, not for sovereign clouds or a test IdP).
import { GUID } from '../config/readers.js'

export const TENANT_PLACEHOLDER = '{tenantid}'

export function isIssuerTemplate (issuer: string): boolean {
  return issuer.includes(TENANT_PLACEHOLDER)
}

/**
 * The issuer a token of tenant `tid` must carry: the discovered issuer itself, or the template
 * filled with `tid` (a GUID, as Entra's tenant ids are; anything else fills nothing).
 */
export function issuerForTenant (metadataIssuer: string, tid: string | undefined): string | undefined {
  if (!isIssuerTemplate(metadataIssuer)) return metadataIssuer
  if (tid === undefined || !GUID.test(tid)) return undefined
  return metadataIssuer.replace(TENANT_PLACEHOLDER, tid)
}
