// The request a reverse proxy asks about when it hands a check to the gateway (nginx
// auth_request, Traefik ForwardAuth, Caddy forward_auth) or hands an unauthenticated request
// over to sign in. Its method and URI come from headers, and headers are anybody's: they are
// believed only from a peer in TRUSTED_PROXIES. From any other peer a check is judged as
// `GET /` (oauth2-proxy trusted X-Forwarded-Uri from anyone: CVE-2026-40575).
import type { IncomingHttpHeaders } from 'node:http'
import proxyAddr from '@fastify/proxy-addr'

export interface OriginalRequest {
  /** Upper-case method token, as rules match it. */
  method: string
  /** Origin-form target (path and query), as the client sent it; normalize before matching. */
  url: string
  /**
   * The host the client asked for (X-Forwarded-Host from a trusted proxy), for rules keyed on
   * host; undefined when the proxy did not say. Host routes (ROUTES) read it.
   */
  host: string | undefined
}

/** What a check from an untrusted peer (or a proxy that sent nothing) is judged as. */
export const SITE_ROOT: OriginalRequest = Object.freeze({ method: 'GET', url: '/', host: undefined })

/** Whether a TCP peer address is one of TRUSTED_PROXIES: compiled once, called per request. */
export function trustedPeers (cidrs: readonly string[]): (address: string | undefined) => boolean {
  if (cidrs.length === 0) return () => false
  const trust = proxyAddr.compile([...cidrs])
  return address => address !== undefined && trust(address, 0)
}

const METHOD = /^[A-Z]{1,16}$/

function one (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/**
 * The original request a trusted proxy names: X-Forwarded-Uri + X-Forwarded-Method (Traefik,
 * Caddy), else X-Original-URI + X-Original-Method (nginx); a missing method is GET. Undefined
 * when the proxy named none; 'invalid' when what it named is not an origin-form target or a
 * method token (repeated headers included), which the caller refuses rather than guesses at.
 */
export function namedOriginalRequest (headers: IncomingHttpHeaders): OriginalRequest | 'invalid' | undefined {
  const forwarded = headers['x-forwarded-uri']
  const uriHeader = forwarded !== undefined ? forwarded : headers['x-original-uri']
  if (uriHeader === undefined) return undefined
  const url = one(uriHeader)
  const rawMethod = forwarded !== undefined ? headers['x-forwarded-method'] : headers['x-original-method']
  const method = rawMethod === undefined ? 'GET' : one(rawMethod)?.toUpperCase()
  if (url === undefined || url.charCodeAt(0) !== 47 || method === undefined || !METHOD.test(method)) return 'invalid'
  return { method, url, host: one(headers['x-forwarded-host']) }
}

/** The request a forward-auth check is about: the named one from a trusted proxy, else `GET /`. */
export function originalRequest (headers: IncomingHttpHeaders, fromTrustedProxy: boolean): OriginalRequest | 'invalid' {
  if (!fromTrustedProxy) return SITE_ROOT
  return namedOriginalRequest(headers) ?? SITE_ROOT
}
