/**
 * A Microsoft Graph stand-in for the gateway's tests and `npm run demo`: the few v1.0 routes a
 * gateway in front of LibreChat calls, with Graph's documented response shapes, paging, error
 * bodies and rules, and knobs to make it throttle, fail or go down.
 *
 * Authentication: every request needs `Authorization: Bearer <JWT>`, verified with jose against
 * the JWKS of the IdP named by `issuer` (fetched through its discovery document at start, and
 * again if a token names an unknown key), `iss` = that issuer, RS256, not expired, and `aud` =
 * this server's own `url` (the origin). The IdP in dev/idp.ts issues exactly such tokens for a
 * scope like `${graph.url}/User.Read`. Anything else gets 401 with Graph's error body
 * `{ error: { code: 'InvalidAuthenticationToken', message, innerError } }`. The signed-in user
 * ("me") is the token's `oid`. (Real Graph tokens cannot be validated by anyone but Graph; a
 * client must treat them as opaque. Scopes/permissions (`scp`) are not enforced here.)
 *
 * Routes (GET unless noted; all answer JSON):
 * - /v1.0/me                                   the user (404 Request_ResourceNotFound if unknown)
 * - /v1.0/me/transitiveMemberOf                groups and directory roles, `@odata.type` on each
 * - /v1.0/me/transitiveMemberOf/microsoft.graph.group      groups only
 * - POST /v1.0/me/getMemberObjects {securityEnabledOnly}   `{ value: [ids] }`, never paged
 * - /v1.0/me/people?$search=&$top=&$skip=      other users, relevance = name order
 * - /v1.0/users[/{id|userPrincipalName}]       `$search="displayName:x" OR "mail:x"`
 * - /v1.0/groups[/{id}]                        `$search="displayName:x"`
 * - /v1.0/groups/{id}/transitiveMembers[/microsoft.graph.user], /v1.0/groups/{id}/owners
 * Collections of directory objects are paged: `pageSize` (default 100) or `$top` (1..999), with
 * an absolute `@odata.nextLink` carrying an opaque `$skiptoken` (and the request's other query
 * options). `$select` picks properties. `$search`, and `$count=true` on directory objects, need
 * the header `ConsistencyLevel: eventual`, else 400 `Request_UnsupportedQuery`, as in Graph;
 * with it, `$count=true` adds `@odata.count`.
 *
 * Knobs: `throttle(n, s)` (next n requests: 429, `Retry-After: s`, code TooManyRequests),
 * `fail(n, status)` (next n: 5xx), `challenge(n)` (next n: 401 with the continuous-access claims
 * challenge, `error="insufficient_claims"`), `setDown` (503 to everything). Knobs apply before
 * authentication, throttle before fail. Every request is recorded in `requests`.
 */
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { listen, readBodyBuffer } from './http.js'
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose'

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface GraphUser {
  id: string;
  displayName: string;
  mail?: string;
  userPrincipalName: string;
  jobTitle?: string;
}

export interface GraphGroup {
  id: string;
  displayName: string;
  mail?: string;
  description?: string;
  /** User ids (direct members; groups here contain users only, so direct = transitive). */
  members: string[];
  /** User ids. */
  owners: string[];
  /** Default true. `getMemberObjects {securityEnabledOnly: true}` returns security groups only. */
  securityEnabled?: boolean;
}

export interface StartGraphOptions {
  /** Tokens are verified against this IdP's JWKS (its discovery `jwks_uri`) and must carry this `iss`. */
  issuer: string;
  /** Page size of directory-object collections when the request has no `$top`. Default 100. */
  pageSize?: number;
  users?: GraphUser[];
  groups?: GraphGroup[];
  /**
   * User oid -> group ids (transitive), e.g. 250 or 1000 ids for group-overage tests; the ids
   * need no GraphGroup. Users not named here get the groups whose `members` list them.
   */
  memberOf?: Record<string, string[]>;
  /**
   * User oid -> directory role ids. Real `transitiveMemberOf` returns directory roles (and
   * administrative units) next to groups; only the `/microsoft.graph.group` cast leaves them out.
   */
  directoryRoles?: Record<string, string[]>;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
}

export interface GraphRequest {
  method: string;
  /** Path without the query, e.g. `/v1.0/me/transitiveMemberOf`. */
  path: string;
  /** Raw query string without `?` (percent-encoded as sent). */
  query: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Graph {
  /** `http://127.0.0.1:port`, no trailing slash: the GRAPH_API_URL, and the `aud` tokens need. */
  url: string;
  /** Every request received, in order (also throttled, failed and unauthenticated ones). */
  requests: GraphRequest[];
  /** User oid -> group ids (transitive). Mutable: changes show on the next request. */
  memberOf: Map<string, string[]>;
  /** Users by id. Mutable. */
  users: Map<string, GraphUser>;
  /** Groups by id. Mutable. */
  groups: Map<string, GraphGroup>;
  /** The next `times` requests get 429 with `Retry-After: retryAfterSeconds` and code TooManyRequests. */
  throttle(times: number, retryAfterSeconds: number): void;
  /** The next `times` requests get `status` (default 503; any 5xx). */
  fail(times: number, status?: number): void;
  /** While down, every request gets 503 serviceNotAvailable. */
  setDown(down: boolean): void;
  /**
   * The next `times` requests get Graph's continuous-access claims challenge: 401
   * InvalidAuthenticationToken with `WWW-Authenticate: Bearer ..., error="insufficient_claims",
   * claims="<base64>"`, as after a revoked session or a password reset.
   */
  challenge(times: number): void;
  /** Closes the server and every open connection. */
  close(): Promise<void>;
}

/** Graph's limit for `$top` on directory objects. */
export const GRAPH_MAX_PAGE_SIZE = 999

// ---------------------------------------------------------------------------------------------
// startGraph
// ---------------------------------------------------------------------------------------------

export async function startGraph (opts: StartGraphOptions): Promise<Graph> {
  const host = opts.host ?? '127.0.0.1'
  const pageSize = opts.pageSize ?? 100
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new TypeError('pageSize must be a positive integer')
  const issuer = opts.issuer.replace(/\/+$/, '')

  const users = new Map((opts.users ?? []).map((u) => [u.id, structuredClone(u)]))
  const groups = new Map((opts.groups ?? []).map((g) => [g.id, structuredClone(g)]))
  const memberOf = new Map(Object.entries(opts.memberOf ?? {}).map(([oid, ids]) => [oid, [...ids]]))
  for (const group of groups.values()) {
    for (const member of group.members) {
      if (opts.memberOf?.[member]) continue
      const list = memberOf.get(member) ?? []
      if (!list.includes(group.id)) list.push(group.id)
      memberOf.set(member, list)
    }
  }
  const directoryRoles = new Map(Object.entries(opts.directoryRoles ?? {}).map(([oid, ids]) => [oid, [...ids]]))

  const requests: GraphRequest[] = []
  let down = false
  let throttles: Array<{ retryAfter: number }> = []
  let failures: number[] = []
  let challenges = 0

  // Keys: fetched now, while the IdP is surely up, so later IdP outages do not affect Graph.
  const keys = await jwksOf(issuer)
  let verifyKeys = createLocalJWKSet(keys)
  const refreshKeys = async (): Promise<void> => {
    verifyKeys = createLocalJWKSet(await jwksOf(issuer))
  }

  const server = http.createServer()
  const url = await listen(server, host, opts.port)

  const api = makeApi({ url, pageSize, users, groups, memberOf, directoryRoles })

  const authenticate = async (req: IncomingMessage): Promise<JWTPayload | string> => {
    const header = req.headers.authorization
    if (!header) return 'Access token is empty.'
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (!match?.[1]) return 'Access token is empty.'
    const verify = () => jwtVerify(match[1]!, verifyKeys, { issuer, audience: url, algorithms: ['RS256'] })
    try {
      let result
      try {
        result = await verify()
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err
        await refreshKeys() // the IdP restarted with a new key
        result = await verify()
      }
      if (typeof result.payload.oid !== 'string' || !result.payload.oid) return 'Access token validation failure: no oid claim.'
      return result.payload
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return 'Lifetime validation failed, the token is expired.'
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'aud') return 'Access token validation failure. Invalid audience.'
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'iss') return 'Access token validation failure. Invalid issuer.'
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'Access token validation failure. Invalid signature.'
      return `IDX14100: JWT is not well formed or could not be validated (${err instanceof Error ? err.message : String(err)}).`
    }
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
    const query = q === -1 ? '' : rawUrl.slice(q + 1)
    requests.push({ method: req.method ?? 'GET', path, query, headers: { ...req.headers } })
    const ids = { requestId: randomUUID(), clientRequestId: headerValue(req, 'client-request-id') ?? undefined }
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => sendGraph(res, status, body, ids, headers)
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      reply(status, graphError(code, message, ids), headers)

    if (down) {
      await drain(req)
      error(503, 'serviceNotAvailable', 'The service is temporarily unavailable (simulated).')
      return
    }
    const throttled = throttles.shift()
    if (throttled) {
      await drain(req)
      error(429, 'TooManyRequests', 'Too many requests from Identifier: (simulated) under category: throttle. Please try again later.', { 'Retry-After': String(throttled.retryAfter) })
      return
    }
    const failure = failures.shift()
    if (failure !== undefined) {
      await drain(req)
      error(failure, FAILURE_CODES[failure] ?? 'UnknownError', `Simulated failure (HTTP ${failure}).`)
      return
    }

    if (challenges > 0) {
      challenges--
      await drain(req)
      const claims = Buffer.from(JSON.stringify({ access_token: { nbf: { essential: true, value: String(Math.floor(Date.now() / 1000)) } } })).toString('base64')
      error(401, 'InvalidAuthenticationToken', 'Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp', {
        'WWW-Authenticate': `Bearer realm="", authorization_uri="${issuer}/oauth2/v2.0/authorize", client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="${claims}"`,
      })
      return
    }
    const auth = await authenticate(req)
    if (typeof auth === 'string') {
      await drain(req)
      error(401, 'InvalidAuthenticationToken', auth, {
        'WWW-Authenticate': `Bearer realm="", authorization_uri="${issuer}/oauth2/v2.0/authorize", error="invalid_token", error_description="${auth.replace(/"/g, "'")}"`,
      })
      return
    }

    let body: unknown
    if (req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT') {
      try {
        const text = await readText(req, 64 * 1024)
        body = text ? JSON.parse(text) : undefined
      } catch {
        error(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.')
        return
      }
    } else {
      await drain(req)
    }
    const result = api({
      method: req.method ?? 'GET',
      path,
      params: new URLSearchParams(query),
      consistencyEventual: (headerValue(req, 'consistencylevel') ?? '').toLowerCase() === 'eventual',
      me: String(auth.oid),
      body,
    })
    if ('error' in result) error(result.status, result.error, result.message)
    else reply(result.status, result.body)
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      console.error('[dev graph] unhandled error', err)
      const ids = { requestId: randomUUID() }
      if (!res.headersSent) sendGraph(res, 500, graphError('generalException', 'Unexpected error in the Graph stand-in.', ids), ids)
      else res.destroy()
    })
  })

  return {
    url,
    requests,
    memberOf,
    users,
    groups,
    throttle (times: number, retryAfterSeconds: number) {
      if (!Number.isInteger(times) || times < 0) throw new TypeError('throttle: times must be a non-negative integer')
      if (!Number.isInteger(retryAfterSeconds) || retryAfterSeconds < 0) throw new TypeError('throttle: retryAfterSeconds must be a non-negative integer')
      throttles = [...throttles, ...Array.from({ length: times }, () => ({ retryAfter: retryAfterSeconds }))]
    },
    fail (times: number, status = 503) {
      if (!Number.isInteger(times) || times < 0) throw new TypeError('fail: times must be a non-negative integer')
      if (!Number.isInteger(status) || status < 500 || status > 599) throw new TypeError('fail: status must be a 5xx code')
      failures = [...failures, ...Array.from({ length: times }, () => status)]
    },
    setDown (value: boolean) {
      down = value
    },
    challenge (times: number) {
      if (!Number.isInteger(times) || times < 0) throw new TypeError('challenge: times must be a non-negative integer')
      challenges += times
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}

const FAILURE_CODES: Record<number, string> = {
  500: 'generalException',
  502: 'BadGateway',
  503: 'serviceNotAvailable',
  504: 'GatewayTimeout',
}

async function jwksOf (issuer: string): Promise<JSONWebKeySet> {
  const discovery = await fetchJson(`${issuer}/.well-known/openid-configuration`) as { jwks_uri?: unknown }
  if (typeof discovery.jwks_uri !== 'string') throw new Error(`startGraph: no jwks_uri in the discovery document of ${issuer}`)
  return await fetchJson(discovery.jwks_uri) as JSONWebKeySet
}

async function fetchJson (url: string): Promise<unknown> {
  const res = await fetch(url, { headers: { accept: 'application/json' } })
  if (!res.ok) {
    await res.body?.cancel()
    throw new Error(`startGraph: GET ${url} answered ${res.status}`)
  }
  return await res.json()
}

// ---------------------------------------------------------------------------------------------
// The API proper (pure: request in, result out)
// ---------------------------------------------------------------------------------------------

interface ApiRequest {
  method: string;
  path: string;
  params: URLSearchParams;
  consistencyEventual: boolean;
  /** The signed-in user's oid. */
  me: string;
  body: unknown;
}

type ApiResult =
  | { status: number; body: unknown }
  | { status: number; error: string; message: string }

type GraphObject = Record<string, unknown>

const USER_SEARCHABLE = ['displayName', 'givenName', 'surname', 'mail', 'userPrincipalName']
const GROUP_SEARCHABLE = ['displayName', 'description', 'mail']

function makeApi (deps: {
  url: string;
  pageSize: number;
  users: Map<string, GraphUser>;
  groups: Map<string, GraphGroup>;
  memberOf: Map<string, string[]>;
  directoryRoles: Map<string, string[]>;
}): (req: ApiRequest) => ApiResult {
  const { url } = deps
  const fail = (status: number, error: string, message: string): ApiResult => ({ status, error, message })
  const notFound = (id: string): ApiResult =>
    fail(404, 'Request_ResourceNotFound', `Resource '${id}' does not exist or one of its queried reference-property objects are not present.`)

  const userObject = (user: GraphUser): GraphObject => {
    const [givenName, ...rest] = user.displayName.split(' ')
    return {
      id: user.id,
      businessPhones: [],
      displayName: user.displayName,
      givenName: givenName ?? null,
      jobTitle: user.jobTitle ?? null,
      mail: user.mail ?? null,
      mobilePhone: null,
      officeLocation: null,
      preferredLanguage: null,
      surname: rest.length ? rest.join(' ') : null,
      userPrincipalName: user.userPrincipalName,
    }
  }
  const groupObject = (group: GraphGroup | undefined, id: string): GraphObject => ({
    id,
    displayName: group?.displayName ?? null,
    description: group?.description ?? null,
    mail: group?.mail ?? null,
    mailEnabled: Boolean(group?.mail),
    securityEnabled: group?.securityEnabled ?? true,
    groupTypes: [],
  })
  const typed = (type: string, object: GraphObject): GraphObject => ({ '@odata.type': `#microsoft.graph.${type}`, ...object })

  /** `$select`: the named properties (plus `@odata.type`), or everything. */
  const select = (params: URLSearchParams, object: GraphObject): GraphObject => {
    const raw = params.get('$select')
    if (!raw) return object
    const wanted = new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))
    const out: GraphObject = {}
    for (const [key, value] of Object.entries(object)) if (key === '@odata.type' || wanted.has(key)) out[key] = value
    return out
  }

  /**
   * A paged collection: `$top` or pageSize, `$skiptoken` from our own nextLink, `$count` and
   * `$search` rules of directory objects.
   */
  const page = (req: ApiRequest, all: GraphObject[], context: string, opts: { skipParam?: '$skiptoken' | '$skip'; defaultTop?: number } = {}): ApiResult => {
    const skipParam = opts.skipParam ?? '$skiptoken'
    const { params } = req
    let top = opts.defaultTop ?? deps.pageSize
    const rawTop = params.get('$top')
    if (rawTop !== null) {
      const n = Number(rawTop)
      if (!/^\d+$/.test(rawTop) || n < 1 || n > GRAPH_MAX_PAGE_SIZE) {
        return fail(400, 'Request_BadRequest', `Invalid page size specified: '${rawTop}'. Must be between 1 and ${GRAPH_MAX_PAGE_SIZE} inclusive.`)
      }
      top = n
    }
    let offset = 0
    const rawSkip = params.get(skipParam)
    if (rawSkip !== null) {
      const decoded = skipParam === '$skip' ? (/^\d+$/.test(rawSkip) ? Number(rawSkip) : undefined) : decodeSkipToken(rawSkip)
      if (decoded === undefined) return fail(400, 'Request_BadRequest', `Invalid ${skipParam} value '${rawSkip}'.`)
      offset = decoded
    }
    const value = all.slice(offset, offset + top).map((o) => select(params, o))
    const body: GraphObject = { '@odata.context': `${url}/v1.0/$metadata#${context}` }
    if (params.get('$count') === 'true') body['@odata.count'] = all.length
    if (offset + top < all.length) {
      const next = new URLSearchParams(params)
      next.delete(skipParam)
      next.set(skipParam, skipParam === '$skip' ? String(offset + top) : encodeSkipToken(offset + top))
      // Graph writes the `$` of its query options literally.
      const query = [...next].map(([k, v]) => `${encodeURIComponent(k).replace(/^%24/, '$')}=${encodeURIComponent(v)}`).join('&')
      body['@odata.nextLink'] = `${url}${req.path}?${query}`
    }
    body.value = value
    return { status: 200, body }
  }

  /** The advanced-query rule of directory objects: `$search` and `$count` need ConsistencyLevel: eventual. */
  const advancedQueryProblem = (req: ApiRequest): ApiResult | undefined => {
    if (req.consistencyEventual) return undefined
    if (req.params.has('$search')) {
      return fail(400, 'Request_UnsupportedQuery', "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'")
    }
    if (req.params.get('$count') === 'true') {
      return fail(400, 'Request_UnsupportedQuery', "Count is not currently supported without the 'ConsistencyLevel: eventual' request header.")
    }
    return undefined
  }

  /** `"displayName:ali" OR "mail:ali"` -> predicate, or an error result. */
  const searchFilter = (raw: string | null, searchable: string[], entity: string): ((o: GraphObject) => boolean) | ApiResult => {
    if (raw === null) return () => true
    const clause = /^\s*"([A-Za-z]+):([^"]*)"\s*/
    const tests: Array<(o: GraphObject) => boolean> = []
    const ops: string[] = []
    let rest = raw
    for (;;) {
      const m = clause.exec(rest)
      if (!m) return fail(400, 'Request_UnsupportedQuery', `Invalid $search query '${raw}': use "property:value" clauses joined by OR or AND.`)
      const [whole, property = '', term = ''] = m
      if (!searchable.includes(property)) {
        return fail(400, 'Request_UnsupportedQuery', `Unsupported or invalid query filter clause specified for property '${property}' of resource '${entity}'.`)
      }
      tests.push((o) => tokenPrefixMatch(o[property], term))
      rest = rest.slice(whole.length)
      if (!rest.trim()) break
      const op = /^(OR|AND)\s+/.exec(rest)
      if (!op?.[1]) return fail(400, 'Request_UnsupportedQuery', `Invalid $search query '${raw}': expected OR or AND.`)
      ops.push(op[1])
      rest = rest.slice(op[0].length)
    }
    // AND binds tighter than OR.
    return (o) => {
      let any = false
      let all = tests[0]!(o)
      for (let i = 0; i < ops.length; i++) {
        if (ops[i] === 'AND') all = all && tests[i + 1]!(o)
        else {
          any ||= all
          all = tests[i + 1]!(o)
        }
      }
      return any || all
    }
  }

  const byName = (a: GraphObject, b: GraphObject) => String(a.displayName ?? '').localeCompare(String(b.displayName ?? ''))

  const directoryCollection = (req: ApiRequest, all: GraphObject[], context: string, searchable: string[], entity: string): ApiResult => {
    const problem = advancedQueryProblem(req)
    if (problem) return problem
    const filter = searchFilter(req.params.get('$search'), searchable, entity)
    if (typeof filter !== 'function') return filter
    return page(req, all.filter(filter), context)
  }

  const userObjects = (ids: string[]) => ids.map((id) => {
    const user = deps.users.get(id)
    return typed('user', user ? userObject(user) : { id })
  })

  return (req) => {
    const segments = req.path.split('/').filter(Boolean).map((s) => decodeURIComponent(s))
    if (segments[0] !== 'v1.0') return fail(400, 'BadRequest', `Invalid version: ${segments[0] ?? ''}`)
    const route = segments.slice(1)
    const is = (...pattern: string[]) => route.length === pattern.length && pattern.every((p, i) => p === '*' || p === route[i])
    const method = req.method.toUpperCase()
    const get = method === 'GET' || method === 'HEAD'

    // /me
    if (is('me') && get) {
      const user = deps.users.get(req.me)
      if (!user) return notFound(req.me)
      return { status: 200, body: { '@odata.context': `${url}/v1.0/$metadata#users/$entity`, ...select(req.params, userObject(user)) } }
    }
    if ((is('me', 'transitiveMemberOf') || is('me', 'transitiveMemberOf', 'microsoft.graph.group')) && get) {
      const groupsOnly = route.length === 3
      const objects: GraphObject[] = (deps.memberOf.get(req.me) ?? []).map((id) => typed('group', groupObject(deps.groups.get(id), id)))
      if (!groupsOnly) for (const id of deps.directoryRoles.get(req.me) ?? []) objects.push(typed('directoryRole', { id, displayName: null, roleTemplateId: id }))
      return directoryCollection(req, objects, groupsOnly ? 'groups' : 'directoryObjects', GROUP_SEARCHABLE, 'Group')
    }
    if (is('me', 'getMemberObjects')) {
      if (method !== 'POST') return fail(405, 'Request_BadRequest', 'Method not allowed: use POST.')
      const securityEnabledOnly = (req.body as { securityEnabledOnly?: unknown } | undefined)?.securityEnabledOnly
      if (typeof securityEnabledOnly !== 'boolean') {
        return fail(400, 'Request_BadRequest', "Required parameter 'securityEnabledOnly' is missing or not a boolean.")
      }
      const ids = (deps.memberOf.get(req.me) ?? []).filter((id) => !securityEnabledOnly || (deps.groups.get(id)?.securityEnabled ?? true))
      if (!securityEnabledOnly) ids.push(...(deps.directoryRoles.get(req.me) ?? []))
      return { status: 200, body: { '@odata.context': `${url}/v1.0/$metadata#Collection(Edm.String)`, value: ids } }
    }
    if (is('me', 'people') && get) {
      // The People API: relevance-ranked people; $search is a plain (optionally quoted) term, no
      // ConsistencyLevel needed; $top defaults to 10; pages with $skip.
      const term = (req.params.get('$search') ?? '').replace(/^"(.*)"$/, '$1').trim()
      const people = [...deps.users.values()]
        .filter((u) => u.id !== req.me)
        .filter((u) => !term || [u.displayName, u.mail, u.userPrincipalName].some((v) => tokenPrefixMatch(v, term)))
        .map((u): GraphObject => {
          const o = userObject(u)
          return {
            id: u.id,
            displayName: u.displayName,
            givenName: o.givenName,
            surname: o.surname,
            jobTitle: o.jobTitle,
            userPrincipalName: u.userPrincipalName,
            scoredEmailAddresses: u.mail ? [{ address: u.mail, relevanceScore: 8, selectionLikelihood: 'notSpecified' }] : [],
            personType: { class: 'Person', subclass: 'OrganizationUser' },
          }
        })
        .sort(byName)
      return page(req, people, 'users(\'me\')/people', { skipParam: '$skip', defaultTop: 10 })
    }

    // /users
    if (is('users') && get) {
      const all = [...deps.users.values()].map(userObject).sort(byName)
      return directoryCollection(req, all, 'users', USER_SEARCHABLE, 'User')
    }
    if (is('users', '*') && get) {
      const key = route[1]!.toLowerCase()
      const user = [...deps.users.values()].find((u) => u.id.toLowerCase() === key || u.userPrincipalName.toLowerCase() === key)
      if (!user) return notFound(route[1]!)
      return { status: 200, body: { '@odata.context': `${url}/v1.0/$metadata#users/$entity`, ...select(req.params, userObject(user)) } }
    }

    // /groups
    if (is('groups') && get) {
      const all = [...deps.groups.values()].map((g) => groupObject(g, g.id)).sort(byName)
      return directoryCollection(req, all, 'groups', GROUP_SEARCHABLE, 'Group')
    }
    if (route[0] === 'groups' && route.length >= 2) {
      const group = deps.groups.get(route[1]!)
      if (!group) return notFound(route[1]!)
      if (!get) return fail(405, 'Request_BadRequest', `Method ${method} not allowed here.`)
      if (is('groups', '*')) return { status: 200, body: { '@odata.context': `${url}/v1.0/$metadata#groups/$entity`, ...select(req.params, groupObject(group, group.id)) } }
      if (is('groups', '*', 'transitiveMembers') || is('groups', '*', 'transitiveMembers', 'microsoft.graph.user') || is('groups', '*', 'members')) {
        return directoryCollection(req, userObjects(group.members), 'directoryObjects', USER_SEARCHABLE, 'User')
      }
      if (is('groups', '*', 'owners')) return directoryCollection(req, userObjects(group.owners), 'directoryObjects', USER_SEARCHABLE, 'User')
    }

    const known = ['me', 'users', 'groups']
    if (known.includes(route[0] ?? '') && route.length > 0 && !get && method !== 'POST') {
      return fail(405, 'Request_BadRequest', `Method ${method} not allowed here.`)
    }
    return fail(400, 'BadRequest', `Resource not found for the segment '${route[route.length - 1] ?? ''}'.`)
  }
}

/** Graph's directory search: case-insensitive prefix of the value or of any of its words. */
function tokenPrefixMatch (value: unknown, term: string): boolean {
  if (typeof value !== 'string' || !term) return false
  const v = value.toLowerCase()
  const words = term.toLowerCase().split(/\s+/).filter(Boolean)
  const tokens = v.split(/[\s._@-]+/).filter(Boolean)
  return v.startsWith(term.toLowerCase()) || words.every((w) => tokens.some((t) => t.startsWith(w)))
}

/** Opaque to clients (Graph's are too); only this server reads them. */
function encodeSkipToken (offset: number): string {
  return 'RFNwdA' + Buffer.from(JSON.stringify({ o: offset })).toString('base64url')
}

function decodeSkipToken (token: string): number | undefined {
  if (!token.startsWith('RFNwdA')) return undefined
  try {
    const { o } = JSON.parse(Buffer.from(token.slice(6), 'base64url').toString('utf8')) as { o?: unknown }
    return typeof o === 'number' && Number.isInteger(o) && o >= 0 ? o : undefined
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP utilities
// ---------------------------------------------------------------------------------------------

function graphError (code: string, message: string, ids: { requestId: string; clientRequestId?: string }): unknown {
  return {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString().replace(/\.\d+Z$/, ''),
        'request-id': ids.requestId,
        'client-request-id': ids.clientRequestId ?? ids.requestId,
      },
    },
  }
}

function sendGraph (res: ServerResponse, status: number, body: unknown, ids: { requestId: string; clientRequestId?: string }, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8',
    'Content-Length': String(Buffer.byteLength(json)),
    'Cache-Control': 'no-cache',
    'request-id': ids.requestId,
    'client-request-id': ids.clientRequestId ?? ids.requestId,
    ...headers,
  })
  res.end(res.req.method === 'HEAD' ? undefined : json)
}

function headerValue (req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

async function readText (req: IncomingMessage, limit: number): Promise<string> {
  return (await readBodyBuffer(req, limit)).toString('utf8')
}

/** Reads and discards a request body, so keep-alive connections stay usable. */
async function drain (req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return
  req.resume()
  await new Promise<void>((resolve) => {
    req.once('end', resolve)
    req.once('close', resolve)
  })
}
