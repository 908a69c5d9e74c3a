// Routes: which upstream a request goes to. Besides UPSTREAM_URL (everything else), a route
// sends one path prefix or one host to its own upstream (LibreChat's admin panel, its RAG API),
// with its own roles and groups on top of the global ones. Compiled once at start; the choice
// is a pure function of the request's normalized path and its host:
//
//   1. a host route whose host equals the request's (case-insensitive, port ignored) wins: a
//      host names a whole site;
//   2. otherwise the longest path route whose prefix covers the normalized path (whole
//      segments: /admin covers /admin and /admin/x, never /admin-evil);
//   3. otherwise none: the default upstream.
//
// Matching on the normalized path (rules.ts) means /ADMIN, /%61dmin and /x/../admin all meet
// the /admin route and its rules, and /admin/../x does not.
import { normalizePath } from './rules.js'

export interface Route {
  /** How /readyz, logs and messages name it: the prefix (`/admin`) or the host (`rag.example.com`). */
  name: string
  kind: 'path' | 'host'
  /** A path route: the normalized prefix (lower case, no trailing slash). A host route: the host, lower case. */
  match: string
  /** Origin plus base path, no trailing slash (as UPSTREAM_URL is kept). */
  upstreamUrl: string
  /** The upstream's origin: the `aud` of the identity JWT it receives. */
  origin: string
  /** Path routes only: the upstream gets the path without the prefix (`/rag/embed` → `/embed`). */
  stripPrefix: boolean
  /** What /readyz and the doctor ask the upstream. */
  healthPath: string
  /** Any one of these roles (app roles or the required-role values) ... */
  roles: string[]
  /** ... and any one of these groups; both empty: only the global requirements. */
  groups: string[]
}

export interface RouteTable {
  hosts: ReadonlyMap<string, Route>
  /** Longest prefix first. */
  paths: readonly Route[]
  /** Every route, in the order configured. */
  all: readonly Route[]
}

export const NO_ROUTES: RouteTable = { hosts: new Map(), paths: [], all: [] }

/** A route as written, in ROUTES or in the rules file, before it is checked. */
export interface RouteSpec {
  /** A path prefix (`/admin`) or a host name (`rag.example.com`). */
  match: string
  upstream: string
  stripPrefix?: boolean
  healthPath?: string
  roles?: string[]
  groups?: string[]
}

export const DEFAULT_ROUTE_HEALTH_PATH = '/health'

/** Paths the gateway answers itself: a route there would never be reached. */
const OWN_PATHS = ['/oauth2', '/healthz', '/readyz']
const HOST = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/
const PREFIX = /^(?:\/[A-Za-z0-9_~.-]+)+\/?$/

/** A DNS host name as routes and COOKIE_DOMAIN take it: lower case, letters, digits and hyphens, dot-separated. */
export function isHostName (host: string): boolean {
  return HOST.test(host)
}

function segmentCovers (path: string, prefix: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)
}

/** The host a request names, as routes compare it: lower case, without port or trailing dot. */
export function normalizeHost (host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined
  let h = host.toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    h = end === -1 ? h : h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) h = h.slice(0, colon)
  }
  return h.endsWith('.') ? h.slice(0, -1) : h
}

/**
 * The route of a request, or undefined for the default upstream. `path` is the normalized path
 * (rules.ts normalizePath); `host` the Host as the gateway believes it (X-Forwarded-Host only
 * from TRUSTED_PROXIES), port and case as sent.
 */
export function chooseRoute (table: RouteTable, request: { path?: string | undefined, host?: string | undefined }): Route | undefined {
  if (table.hosts.size > 0) {
    const host = normalizeHost(request.host)
    const byHost = host === undefined ? undefined : table.hosts.get(host)
    if (byHost !== undefined) return byHost
  }
  const path = request.path
  if (path === undefined) return undefined
  for (const route of table.paths) {
    if (segmentCovers(path, route.match)) return route
  }
  return undefined
}

/**
 * The path (and query) the upstream of a strip_prefix route receives, from the request's raw
 * target: dot segments resolved and empty segments dropped as normalizePath does, then the
 * prefix's segments removed. Undefined when the raw target does not begin with the prefix once
 * resolved (an encoded `/` or `\` inside a segment): normalization and the raw target disagree
 * about where the prefix ends, so nothing is guessed and the request is refused.
 */
export function strippedTarget (route: Route, url: string): string | undefined {
  const end = url.search(/[?#]/)
  const rawPath = end === -1 ? url : url.slice(0, end)
  const rest = end === -1 ? '' : url.slice(end)
  const segments: string[] = []
  for (const seg of rawPath.split(/[/\\]/)) {
    if (seg === '') continue
    let decoded: string
    try {
      decoded = decodeURIComponent(seg)
    } catch {
      return undefined
    }
    if (decoded === '.') continue
    if (decoded === '..') segments.pop()
    else segments.push(seg)
  }
  const prefix = route.match.split('/').slice(1)
  for (const [i, want] of prefix.entries()) {
    const seg = segments[i]
    if (seg === undefined || decodeURIComponent(seg).toLowerCase() !== want) return undefined
  }
  const remaining = segments.slice(prefix.length)
  const trailing = remaining.length > 0 && /[/\\]$/.test(rawPath) ? '/' : ''
  return '/' + remaining.join('/') + trailing + rest
}

/** One route checked; the problem says what is wrong with it (the caller says where it is). */
export function compileRoute (spec: RouteSpec): { route: Route } | { problem: string } {
  const raw = spec.match.trim()
  let kind: Route['kind']
  let match: string
  if (raw.startsWith('/')) {
    if (/^\/+$/.test(raw)) return { problem: 'the prefix / is every path: that is UPSTREAM_URL\'s job' }
    const prefix = PREFIX.test(raw) && !raw.split('/').some(s => s === '.' || s === '..') ? normalizePath(raw) : undefined
    if (prefix === undefined) return { problem: `the prefix "${raw}" must be a plain path such as /admin (letters, digits, - _ . ~; no dot segments or %)` }
    if (OWN_PATHS.some(p => segmentCovers(prefix, p) || segmentCovers(p, prefix))) return { problem: `the prefix ${prefix} overlaps the gateway's own ${OWN_PATHS.join(', ')}` }
    kind = 'path'
    match = prefix
  } else {
    if (raw.includes(':')) return { problem: `the host "${raw}" must be a host name without a port (the port is ignored when matching)` }
    const host = raw.toLowerCase().replace(/\.$/, '')
    if (!HOST.test(host)) return { problem: `"${raw}" must be a path prefix starting with / (such as /admin) or a host name (such as rag.example.com)` }
    kind = 'host'
    match = host
  }
  const upstreamRaw = spec.upstream.trim()
  let u: URL
  try {
    if (/\s/.test(upstreamRaw)) throw new Error('space')
    u = new URL(upstreamRaw)
  } catch {
    return { problem: `the upstream "${upstreamRaw}" must be an absolute URL such as http://admin-panel:3000` }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { problem: `the upstream "${upstreamRaw}" must start with http:// or https://` }
  if (u.username !== '' || u.password !== '') return { problem: 'the upstream URL must not contain a user name or password' }
  if (u.search !== '' || u.hash !== '') return { problem: `the upstream "${upstreamRaw}" must not have a query or fragment` }
  const healthPath = spec.healthPath ?? DEFAULT_ROUTE_HEALTH_PATH
  if (!healthPath.startsWith('/') || /\s/.test(healthPath)) return { problem: `the health path "${healthPath}" must be a path starting with /` }
  const stripPrefix = spec.stripPrefix ?? false
  if (stripPrefix && kind === 'host') return { problem: 'strip_prefix applies to path routes only' }
  return {
    route: {
      name: match,
      kind,
      match,
      upstreamUrl: u.origin + u.pathname.replace(/\/+$/, ''),
      origin: u.origin,
      stripPrefix,
      healthPath,
      roles: spec.roles ?? [],
      groups: spec.groups ?? []
    }
  }
}

/**
 * ROUTES: comma-separated `<prefix or host>=<upstream URL>`, each optionally followed by
 * `strip_prefix` and/or `health=/path`, separated by spaces:
 *   /admin=http://admin-panel:3000, rag.example.com=http://rag_api:8000, /rag=http://rag_api:8000 strip_prefix
 * One problem per bad entry.
 */
export function parseRoutesVariable (value: string): { specs: RouteSpec[], problems: string[] } {
  const specs: RouteSpec[] = []
  const problems: string[] = []
  for (const entry of value.split(',').map(e => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=')
    const [upstream, ...options] = eq === -1 ? [] : entry.slice(eq + 1).trim().split(/\s+/)
    if (eq <= 0 || upstream === undefined || upstream === '') {
      problems.push(`entry "${entry}" must be <path prefix or host>=<upstream URL>, such as /admin=http://admin-panel:3000 or rag.example.com=http://rag_api:8000`)
      continue
    }
    const spec: RouteSpec = { match: entry.slice(0, eq).trim(), upstream }
    let bad: string | undefined
    for (const option of options) {
      if (option === 'strip_prefix') spec.stripPrefix = true
      else if (option.startsWith('health=')) spec.healthPath = option.slice(7)
      else bad ??= option
    }
    if (bad !== undefined) {
      problems.push(`entry "${entry}" has the unknown option "${bad}" (expected strip_prefix or health=/path after the URL)`)
      continue
    }
    specs.push(spec)
  }
  return { specs, problems }
}

/** The table the choice runs on; two routes for the same prefix or host are a problem. */
export function routeTable (routes: readonly Route[]): { table: RouteTable } | { problem: string } {
  const hosts = new Map<string, Route>()
  const paths: Route[] = []
  for (const route of routes) {
    if (hosts.has(route.match) || paths.some(p => p.match === route.match)) return { problem: `${route.name} is routed twice; keep one route for it` }
    if (route.kind === 'host') hosts.set(route.match, route)
    else paths.push(route)
  }
  paths.sort((a, b) => b.match.length - a.match.length)
  return { table: { hosts, paths, all: [...routes] } }
}
