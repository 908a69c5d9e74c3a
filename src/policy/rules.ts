// Per-path authorization rules from a JSON or YAML file (AUTHZ_RULES_FILE):
//
//   public:                 # reachable without signing in (none by default)
//     - /api/config
//     - GET /images/
//   rules:                  # the longest matching prefix applies, on top of the global rules
//     - path: /api/admin
//       methods: [GET, POST] # optional; all methods when absent
//       roles: [ADMIN]       # any one of these roles ...
//       groups: [<object id>] # ... and any one of these groups
//   routes:                 # other upstreams (routes.ts); the rest goes to UPSTREAM_URL
//     - path: /rag           # or host: admin.chat.example.com
//       upstream: http://rag_api:8000
//       strip_prefix: true   # optional: the upstream gets /embed for /rag/embed
//       health_path: /health # optional: what /readyz asks it
//       roles: [ADMIN]       # optional, on top of the global rules, as above
//
// Rules match the normalized path only (decoded once, `//` collapsed, dot segments resolved,
// case folded, query ignored), so an encoded or dotted variant meets the same rule.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { compileRoute, type Route, type RouteSpec } from './routes.js'

export interface PathRule {
  /** Normalized prefix, lower case, no trailing slash (except `/`). */
  prefix: string
  methods: string[] | undefined
  roles: string[]
  groups: string[]
}

export interface PublicPath { prefix: string, methods: string[] | undefined }

export interface AuthzRules {
  /** Sorted longest prefix first. */
  rules: PathRule[]
  publicPaths: PublicPath[]
  /** Every group some rule names: kept in X-Forwarded-Groups when it must be cut. */
  namedGroups: string[]
}

export const EMPTY_RULES: AuthzRules = { rules: [], publicPaths: [], namedGroups: [] }

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * The path a rule sees. Undefined when the path cannot be decoded: such a request is refused
 * rather than guessed at.
 */
export function normalizePath (url: string): string | undefined {
  const end = url.search(/[?#]/)
  let path = end === -1 ? url : url.slice(0, end)
  try {
    path = decodeURIComponent(path)
  } catch {
    return undefined
  }
  path = path.replace(/\\/g, '/')
  const out: string[] = []
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue
    if (seg === '..') out.pop()
    else out.push(seg)
  }
  return ('/' + out.join('/')).toLowerCase()
}

function matchesPrefix (path: string, prefix: string): boolean {
  if (prefix === '/') return true
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47)
}

export function findRule (rules: AuthzRules, method: string, path: string): PathRule | undefined {
  for (const rule of rules.rules) {
    if (rule.methods !== undefined && !rule.methods.includes(method)) continue
    if (matchesPrefix(path, rule.prefix)) return rule
  }
  return undefined
}

export function isPublic (rules: AuthzRules, method: string, path: string): boolean {
  for (const p of rules.publicPaths) {
    if (p.methods !== undefined && !p.methods.includes(method)) continue
    if (matchesPrefix(path, p.prefix)) return true
  }
  return false
}

/** A rule's path, normalized like the requests it will meet. */
function prefixOf (raw: string): string | undefined {
  return raw.startsWith('/') ? normalizePath(raw) : undefined
}

function stringList (value: unknown): string[] | undefined {
  if (value === undefined) return []
  if (typeof value === 'string') return [value]
  if (Array.isArray(value) && value.every(v => typeof v === 'string' && v.trim() !== '')) return value.map(v => v.trim())
  return undefined
}

export interface CompiledRules {
  rules: AuthzRules
  /** The file's `routes`, each checked; ROUTES joins them in config/authorization.ts. */
  routes: Route[]
}

/** Validates parsed rules; the problem names the rule and the fault. */
export function compileRules (doc: unknown): CompiledRules | { problem: string } {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { problem: 'the file must hold an object with "rules", "public" and/or "routes"' }
  const { rules: rawRules, public: rawPublic, routes: rawRoutes, ...rest } = doc as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return { problem: `unknown key "${unknown[0] as string}" (expected "rules", "public" and "routes")` }

  const publicPaths: PublicPath[] = []
  const pub = stringList(rawPublic)
  if (pub === undefined) return { problem: '"public" must be a list of paths such as "/api/config" or "GET /images/"' }
  for (const [i, entry] of pub.entries()) {
    const m = /^(?:([A-Z]+)\s+)?(\S+)$/.exec(entry)
    const prefix = m?.[2] !== undefined ? prefixOf(m[2]) : undefined
    if (m === null || prefix === undefined || (m[1] !== undefined && !METHODS.has(m[1]))) {
      return { problem: `public[${i}] "${entry}" must be a path starting with / , optionally after a method (GET /images/)` }
    }
    if (prefix === '/') return { problem: `public[${i}] "${entry}" would make everything public; list specific paths` }
    publicPaths.push({ prefix, methods: m[1] !== undefined ? [m[1]] : undefined })
  }

  const rules: PathRule[] = []
  if (rawRules !== undefined && !Array.isArray(rawRules)) return { problem: '"rules" must be a list' }
  for (const [i, raw] of ((rawRules as unknown[] | undefined) ?? []).entries()) {
    const where = `rules[${i}]`
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problem: `${where} must be an object with path, and roles and/or groups` }
    const r = raw as Record<string, unknown>
    const extra = Object.keys(r).filter(k => !['path', 'methods', 'roles', 'groups'].includes(k))
    if (extra.length > 0) return { problem: `${where} has unknown key "${extra[0] as string}" (expected path, methods, roles, groups)` }
    const prefix = typeof r.path === 'string' ? prefixOf(r.path) : undefined
    if (prefix === undefined) return { problem: `${where} needs "path", a path starting with / such as /api/admin` }
    const label = `${where} (${String(r.path)})`
    const methods = r.methods === undefined ? undefined : stringList(r.methods)?.map(m => m.toUpperCase())
    if (methods !== undefined && (methods.length === 0 || methods.some(m => !METHODS.has(m)))) return { problem: `${label}: "methods" must list HTTP methods such as GET, POST` }
    const roles = stringList(r.roles)
    const groups = stringList(r.groups)
    if (roles === undefined) return { problem: `${label}: "roles" must be a list of role names` }
    if (groups === undefined) return { problem: `${label}: "groups" must be a list of group object ids` }
    if (roles.length === 0 && groups.length === 0) return { problem: `${label} requires nothing: give it roles and/or groups` }
    rules.push({ prefix, methods, roles, groups })
  }
  rules.sort((a, b) => b.prefix.length - a.prefix.length)

  const routes: Route[] = []
  if (rawRoutes !== undefined && !Array.isArray(rawRoutes)) return { problem: '"routes" must be a list' }
  for (const [i, raw] of ((rawRoutes as unknown[] | undefined) ?? []).entries()) {
    const spec = routeSpec(raw, `routes[${i}]`)
    if ('problem' in spec) return spec
    const compiled = compileRoute(spec)
    if ('problem' in compiled) return { problem: `routes[${i}] (${spec.match}): ${compiled.problem}` }
    routes.push(compiled.route)
  }
  const namedGroups = [...new Set([...rules.flatMap(r => r.groups), ...routes.flatMap(r => r.groups)])]
  return { rules: { rules, publicPaths, namedGroups }, routes }
}

const ROUTE_KEYS = ['path', 'host', 'upstream', 'strip_prefix', 'health_path', 'roles', 'groups']

/** A `routes` entry of the file as a RouteSpec: exactly one of path or host, an upstream. */
function routeSpec (raw: unknown, where: string): RouteSpec | { problem: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { problem: `${where} must be an object with path or host, and upstream` }
  const r = raw as Record<string, unknown>
  const extra = Object.keys(r).filter(k => !ROUTE_KEYS.includes(k))
  if (extra.length > 0) return { problem: `${where} has unknown key "${extra[0] as string}" (expected ${ROUTE_KEYS.join(', ')})` }
  const match = r.path ?? r.host
  if ((r.path === undefined) === (r.host === undefined) || typeof match !== 'string') return { problem: `${where} needs either "path" (such as /rag) or "host" (such as admin.chat.example.com)` }
  if (r.path !== undefined && !match.startsWith('/')) return { problem: `${where}: "path" must start with / (such as /rag)` }
  if (r.host !== undefined && match.startsWith('/')) return { problem: `${where}: "host" must be a host name such as admin.chat.example.com, not a path` }
  const label = `${where} (${match})`
  if (typeof r.upstream !== 'string') return { problem: `${label} needs "upstream", a URL such as http://rag_api:8000` }
  if (r.strip_prefix !== undefined && typeof r.strip_prefix !== 'boolean') return { problem: `${label}: "strip_prefix" must be true or false` }
  if (r.health_path !== undefined && typeof r.health_path !== 'string') return { problem: `${label}: "health_path" must be a path such as /health` }
  const roles = stringList(r.roles)
  const groups = stringList(r.groups)
  if (roles === undefined) return { problem: `${label}: "roles" must be a list of role names` }
  if (groups === undefined) return { problem: `${label}: "groups" must be a list of group object ids` }
  return { match, upstream: r.upstream, stripPrefix: r.strip_prefix as boolean | undefined, healthPath: r.health_path as string | undefined, roles, groups }
}

export function loadRulesFile (file: string): CompiledRules | { problem: string } {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return { problem: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}); mount the file or fix the path` }
  }
  let doc: unknown
  try {
    doc = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text)
  } catch (err) {
    return { problem: `${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0] ?? ''}` }
  }
  const compiled = compileRules(doc)
  return 'problem' in compiled ? { problem: `${file}: ${compiled.problem}` } : compiled
}
