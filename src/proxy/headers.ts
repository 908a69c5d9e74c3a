// The headers the upstream receives. Identity headers are only ever the gateway's: any
// client-sent header that could be mistaken for one is removed first, whatever its case or
// `_`/`-` spelling (X_Forwarded_User reaches apps that normalise underscores).
import type { IncomingHttpHeaders } from 'node:http'
import type { Identity } from '../auth/identity.js'

export const IDENTITY_HEADERS = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-name',
  'x-forwarded-groups',
  'x-forwarded-roles',
  'x-forwarded-tenant-id'
] as const

/** Headers that describe the connection; believed only from a trusted proxy. */
const HOP_IDENTITY = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded']

/** Set alongside X-Forwarded-Groups when the list had to be cut to fit the header budget. */
export const GROUPS_TRUNCATED_HEADER = 'x-forwarded-groups-truncated'
const RESERVED = new Set<string>([...IDENTITY_HEADERS, 'x-forwarded-identity', GROUPS_TRUNCATED_HEADER])
const RESERVED_PREFIX = 'x-forwarded-access-token'

/** Whether a client-sent header name collides with one the gateway owns. */
export function isReservedHeader (name: string): boolean {
  const n = name.toLowerCase().replaceAll('_', '-')
  return RESERVED.has(n) || n.startsWith(RESERVED_PREFIX)
}

const PLAIN = /^[\x20-\x7e]*$/
const PLAIN_LIST_ITEM = /^[\x20-\x2b\x2d-\x7e]*$/ // printable ASCII without the comma

/**
 * Header values must be bytes, and a CR/LF must never reach the wire. Printable ASCII passes
 * verbatim; anything else is sent as an RFC 8187 ext-value, `UTF-8''` + percent-encoded
 * UTF-8 ("Zoë" → `UTF-8''Zo%C3%AB`), which the README documents for upstreams.
 */
export function encodeHeaderValue (value: string, listItem = false): string {
  if ((listItem ? PLAIN_LIST_ITEM : PLAIN).test(value) && !value.startsWith("UTF-8''")) return value
  return "UTF-8''" + encodeURIComponent(value).replace(/['()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

export interface HeaderBudget {
  /** X-Forwarded-Groups may not exceed this many bytes (431s and 400s otherwise). */
  maxGroupBytes: number
  /** Groups that some rule names: kept first when the list must be cut. */
  keepGroups: readonly string[]
}

/**
 * X-Forwarded-Groups within the budget. Past it, only the groups some rule names are sent
 * (as many as fit) and the truncation is flagged, so no user is broken by their group count.
 */
export function groupsHeader (groups: readonly string[], budget: HeaderBudget): { value: string, truncated: boolean } {
  const all = groups.map(g => encodeHeaderValue(g, true)).join(',')
  if (all.length <= budget.maxGroupBytes) return { value: all, truncated: false }
  const keep = new Set(budget.keepGroups)
  let value = ''
  for (const g of groups) {
    if (!keep.has(g)) continue
    const item = encodeHeaderValue(g, true)
    if (value.length + item.length + 1 > budget.maxGroupBytes) break
    value = value === '' ? item : `${value},${item}`
  }
  return { value, truncated: true }
}

/** Identity headers for a user, computed once at sign-in (and refresh) and kept with the session. */
export function identityHeaders (identity: Identity, budget: HeaderBudget = { maxGroupBytes: 4096, keepGroups: [] }): Record<string, string> {
  const h: Record<string, string> = {
    'x-forwarded-user': encodeHeaderValue(identity.userId)
  }
  if (identity.email !== undefined) h['x-forwarded-email'] = encodeHeaderValue(identity.email)
  if (identity.preferredUsername !== undefined) h['x-forwarded-preferred-username'] = encodeHeaderValue(identity.preferredUsername)
  if (identity.name !== undefined) h['x-forwarded-name'] = encodeHeaderValue(identity.name)
  const groups = groupsHeader(identity.groups, budget)
  h['x-forwarded-groups'] = groups.value
  if (groups.truncated) h[GROUPS_TRUNCATED_HEADER] = 'true'
  h['x-forwarded-roles'] = identity.roles.map(r => encodeHeaderValue(r, true)).join(',')
  if (identity.tenantId !== undefined) h['x-forwarded-tenant-id'] = encodeHeaderValue(identity.tenantId)
  return h
}

/** Removes the gateway's cookie from a Cookie header, keeping every other cookie as sent. */
export function stripCookie (cookieHeader: string, name: string): string | undefined {
  if (!cookieHeader.includes(name)) return cookieHeader
  const kept = cookieHeader.split(';').filter(part => {
    const eq = part.indexOf('=')
    return (eq === -1 ? part : part.slice(0, eq)).trim() !== name
  })
  return kept.length === 0 ? undefined : kept.map(p => p.trim()).join('; ')
}

export interface ConnectionFacts {
  /** The peer address of the TCP connection. */
  peer: string
  /** Whether that peer is in TRUSTED_PROXIES. */
  trusted: boolean
  /** The protocol the client used, as far as we may believe it. */
  protocol: string
  host: string | undefined
}

/**
 * Rewrites the client's headers for the upstream, in place: reserved names removed, the
 * gateway cookie stripped, X-Forwarded-For/-Proto/-Host from the real connection (a client's
 * own values kept only behind a trusted proxy), then the user's identity headers.
 */
export function upstreamHeaders (
  headers: IncomingHttpHeaders,
  cookieName: string,
  conn: ConnectionFacts,
  identity: Record<string, string> | undefined
): IncomingHttpHeaders {
  for (const name in headers) {
    // Node lower-cases header names; only names starting with x can collide.
    if (name.charCodeAt(0) === 120 && isReservedHeader(name)) delete headers[name]
  }
  // The gateway's server already answered 100-continue; the upstream client must not see it.
  if (headers.expect !== undefined) delete headers.expect
  const cookie = headers.cookie
  if (cookie !== undefined) {
    const rest = stripCookie(cookie, cookieName)
    if (rest === undefined) delete headers.cookie
    else headers.cookie = rest
  }
  const priorFor = headers['x-forwarded-for']
  if (!conn.trusted) {
    for (const h of HOP_IDENTITY) delete headers[h]
  }
  headers['x-forwarded-for'] = conn.trusted && typeof priorFor === 'string' && priorFor !== '' ? `${priorFor}, ${conn.peer}` : conn.peer
  headers['x-forwarded-proto'] = conn.protocol
  if (conn.host !== undefined) headers['x-forwarded-host'] = conn.host
  if (identity !== undefined) Object.assign(headers, identity)
  return headers
}
