// Where a user may be sent back to after sign-in: a same-origin relative path, or (with host
// routes under COOKIE_DOMAIN) an absolute URL on one of the configured sites. Everything else
// (other origins, protocol-relative `//host`, backslash tricks that browsers read as `//`,
// encoded or whitespace-padded variants of those, credentials, look-alike hosts) falls back to `/`.

import { normalizeHost } from './routes.js'
const UNSAFE_CHARS = /[\u0000-\u001f\u007f\\\s]/ // eslint-disable-line no-control-regex
const BASE = 'http://gateway.invalid'

function decodeRepeatedly (value: string): string | undefined {
  let current = value
  for (let i = 0; i < 5; i++) {
    let next: string
    try {
      next = decodeURIComponent(current)
    } catch {
      return undefined
    }
    if (next === current) return current
    current = next
  }
  return undefined // still changing after 5 rounds: refuse rather than guess
}

export function safeReturnPath (raw: unknown): string {
  if (typeof raw !== 'string' || raw === '' || raw.length > 2048) return '/'
  if (!raw.startsWith('/')) return '/'
  if (UNSAFE_CHARS.test(raw) || raw.startsWith('//')) return '/'
  // The path decides where a browser goes; encoded whitespace in the query is harmless.
  const end = raw.search(/[?#]/)
  const decodedPath = decodeRepeatedly(end === -1 ? raw : raw.slice(0, end))
  if (decodedPath === undefined || UNSAFE_CHARS.test(decodedPath) || decodedPath.startsWith('//')) return '/'
  let url: URL
  try {
    url = new URL(raw, BASE)
  } catch {
    return '/'
  }
  if (url.origin !== BASE) return '/'
  const result = url.pathname + url.search + url.hash
  return result.startsWith('//') ? '/' : result
}

/** An absolute URL's start as accepted: scheme, `//`, then a plain host (ASCII, no `@`, `%` or `\\`) and port. */
const ABSOLUTE = /^https?:\/\/[a-z0-9.-]+(?::\d{1,5})?(?=[/?#]|$)/i

/**
 * Where to go after sign-in. `origins`: the configured sites (config.siteOrigins' values), the
 * only origins an absolute URL may name, matched exactly (scheme, host and port; no suffix
 * matching, so neither `admin.example.com.evil.net` nor `evil-admin.example.com` passes).
 * `base`: the site the request came to when it is not DOMAIN_SERVER's; a relative path is then
 * made absolute on it, since sign-in completes on DOMAIN_SERVER. Configuration decides, never a
 * request header: `base` is itself one of the configured origins.
 */
export function safeReturnTarget (raw: unknown, origins: ReadonlySet<string>, base?: string): string {
  if (typeof raw !== 'string') return '/'
  if (raw.startsWith('/')) {
    const path = safeReturnPath(raw)
    return base !== undefined ? base + path : path
  }
  if (raw.length > 2048 || UNSAFE_CHARS.test(raw)) return '/'
  const start = ABSOLUTE.exec(raw)
  if (start === null) return '/'
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return '/'
  }
  if (url.username !== '' || url.password !== '' || !origins.has(url.origin)) return '/'
  const path = url.pathname + url.search + url.hash
  // The path is held to the same rules as a relative one; anything refused there is refused here.
  if (safeReturnPath(path) !== path) return '/'
  return url.origin + path
}

/**
 * The site a sign-in should return to for a request on `host`: the configured origin of a host
 * route under COOKIE_DOMAIN (`siteOrigins`, keyed by host name, DOMAIN_SERVER's included);
 * undefined on DOMAIN_SERVER's own host and on any host that is no site. Configuration decides,
 * never the header: an unknown host finds nothing.
 */
export function routeSiteFor (siteOrigins: ReadonlyMap<string, string>, publicOrigin: string, host: string | undefined): string | undefined {
  if (siteOrigins.size < 2) return undefined
  const name = normalizeHost(host)
  if (name === undefined || publicOrigin === '' || name === new URL(publicOrigin).hostname) return undefined
  return siteOrigins.get(name)
}
