// The two cookie operations the request path needs, without parsing every cookie the app
// sets (LibreChat sends several on each request): find ours, and strip ours before proxying.

function findName (header: string, name: string, from: number): number {
  const needle = name + '='
  let i = header.indexOf(needle, from)
  // A match counts only at the start of a cookie pair: at the start, or after `;` and spaces.
  // So `entra-gw` never matches `x-entra-gw`, nor a look-alike planted inside another
  // cookie's value (`x=a entra-gw=...`), which browsers allow.
  while (i > 0 && !startsPair(header, i)) i = header.indexOf(needle, i + 1)
  return i
}

function startsPair (header: string, i: number): boolean {
  let j = i - 1
  while (j >= 0 && (header[j] === ' ' || header[j] === '\t')) j--
  return j < 0 || header[j] === ';'
}

/** The value of cookie `name` in a Cookie header (percent-decoded), or undefined. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  const i = findName(header, name, 0)
  if (i === -1) return undefined
  const start = i + name.length + 1
  const end = header.indexOf(';', start)
  const value = (end === -1 ? header.slice(start) : header.slice(start, end)).trim()
  if (!value.includes('%')) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}

/** The Cookie header without the named cookies (every other cookie as sent); undefined when none is left. */
export function stripCookies (header: string, names: readonly string[]): string | undefined {
  if (!names.some(n => header.includes(n))) return header
  const kept = header.split(';').filter(part => {
    const eq = part.indexOf('=')
    return !names.includes((eq === -1 ? part : part.slice(0, eq)).trim())
  })
  return kept.length === 0 ? undefined : kept.map(p => p.trim()).join('; ')
}

export interface CookieFlags {
  secure: boolean
  /** COOKIE_DOMAIN: the cookie is sent to that domain and every host under it; none: host-only. */
  domain?: string | undefined
}

/**
 * A Set-Cookie value with every flag: HttpOnly, SameSite=Lax, Path=/, Secure when the public
 * origin is https, Domain when COOKIE_DOMAIN is set.
 */
export function serializeCookie (name: string, value: string, maxAgeMs: number, flags: CookieFlags): string {
  const seconds = Math.max(0, Math.floor(maxAgeMs / 1000))
  const expires = new Date(Date.now() + seconds * 1000).toUTCString()
  return `${name}=${value}; Max-Age=${seconds}; Path=/; Expires=${expires}${flags.domain !== undefined ? `; Domain=${flags.domain}` : ''}; HttpOnly; SameSite=Lax${flags.secure ? '; Secure' : ''}`
}
