// The headers the upstream receives. Identity headers are only ever the gateway's: any
// client-sent header that could be mistaken for one is removed first, whatever its case or
// `_`/`-` spelling (X_Forwarded_User reaches apps that normalise underscores).
import type { Identity } from '../principal/claims.js'
import { stripCookies } from '../session/cookies.js'

export const IDENTITY_HEADERS = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-name',
  'x-forwarded-groups',
  'x-forwarded-roles',
  'x-forwarded-tenant-id'
] as const

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

/** Identity headers for a user (proxy/identity.ts encodes them once per principal). */
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
 * Headers that describe one hop and end there (RFC 9110 7.6.1), plus those the proxy sets
 * itself: never passed on. `expect`: the gateway's server already answered 100-continue.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'expect', 'host', 'http2-settings'])

/**
 * Headers that claim something about the client or the original request (its address, scheme,
 * host, path). The gateway sets X-Forwarded-For/-Proto/-Host from the real connection; a
 * client's own values are believed only from a trusted proxy (X-Forwarded-For is appended
 * to). Every other one is dropped: apps and frameworks read them as facts.
 */
const FORWARDING = new Set([
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix',
  'x-forwarded-server', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-uri', 'x-forwarded-method',
  'x-forwarded-path', 'forwarded', 'x-real-ip', 'x-client-ip', 'x-cluster-client-ip', 'true-client-ip',
  'cf-connecting-ip', 'fastly-client-ip', 'x-original-url', 'x-original-uri', 'x-original-host',
  'x-original-method', 'x-rewrite-url', 'x-proxyuser-ip', 'x-host', 'x-http-method-override'
])

/**
 * The upstream request's headers, built in one pass over the client's raw headers (names as
 * sent, duplicates kept) into the flat [name, value, ...] list undici takes:
 * hop-by-hop headers, and any named in Connection, removed; reserved identity headers and
 * the forwarding family removed in every spelling (`_` read as `-`, any case); the gateway's
 * own cookies stripped from Cookie; X-Forwarded-For/-Proto/-Host from the real connection;
 * then the gateway's identity headers.
 */
export function upstreamRequestHeaders (
  raw: readonly string[],
  cookieNames: readonly string[],
  conn: ConnectionFacts,
  identity: Readonly<Record<string, string>> | undefined
): string[] {
  const out: string[] = []
  let connectionTokens: string | undefined
  let priorFor: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    let n = name.toLowerCase()
    if (n.includes('_')) n = n.replaceAll('_', '-')
    if (HOP_BY_HOP.has(n)) {
      if (n === 'connection' && name.length === 10) connectionTokens = connectionTokens === undefined ? value : `${connectionTokens},${value}`
      continue
    }
    // Every x-forwarded-* the client sends is dropped (the gateway's own are added below):
    // a list of names would always miss the next one an app reads.
    if (FORWARDING.has(n) || n.startsWith('x-forwarded-')) {
      if (conn.trusted && n === 'x-forwarded-for' && !name.includes('_')) priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`
      continue
    }
    if (n.charCodeAt(0) === 120 && isReservedHeader(n)) continue
    // A header the gateway sets itself (Authorization with FORWARD_AUTHORIZATION_BEARER) is never the client's.
    if (identity !== undefined && Object.hasOwn(identity, n)) continue
    if (n === 'cookie') {
      const rest = stripCookies(value, cookieNames)
      if (rest !== undefined) out.push(name, rest)
      continue
    }
    out.push(name, value)
  }
  if (connectionTokens !== undefined) dropNamed(out, connectionTokens)
  out.push('x-forwarded-for', priorFor !== undefined && priorFor !== '' ? `${priorFor}, ${conn.peer}` : conn.peer)
  out.push('x-forwarded-proto', conn.protocol)
  if (conn.host !== undefined) out.push('x-forwarded-host', conn.host)
  if (identity !== undefined) {
    for (const key in identity) out.push(key, identity[key] as string)
  }
  return out
}

/** Removes the headers a client listed in its Connection header (they were meant for this hop only). */
function dropNamed (out: string[], tokens: string): void {
  const names = new Set(tokens.split(',').map(t => t.trim().toLowerCase()).filter(Boolean))
  for (let i = out.length - 2; i >= 0; i -= 2) {
    if (names.has((out[i] as string).toLowerCase())) out.splice(i, 2)
  }
}

/** Response headers that end at this hop; Node frames the body itself. */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'trailer', 'upgrade', 'te'])

/** The upstream's response headers for the client: hop-by-hop removed, everything else (every Set-Cookie) as sent. */
export function clientResponseHeaders (headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const listed = headers.connection
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(name)) continue
    out[name] = value
  }
  if (listed !== undefined) {
    for (const token of String(listed).split(',')) delete out[token.trim().toLowerCase()]
  }
  return out
}
