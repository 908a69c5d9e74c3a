// The Microsoft Graph stand-in (dev/graph.ts), called with real access tokens from the
// Entra-shaped IdP (dev/idp.ts), as the gateway will.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import * as client from 'openid-client'
import { SignJWT, generateKeyPair } from 'jose'
import { startIdp, DEMO_USERS } from '../dev/idp.js'
import { DEV_CLIENT_ID } from '../dev/client-id.js'
import { startGraph, GRAPH_MAX_PAGE_SIZE, type GraphGroup, type GraphUser } from '../dev/graph.js'
import { Browser, signIn } from './helpers/browser.js'

const CLIENT_ID = DEV_CLIENT_ID
const CLIENT_SECRET = 'graph-test-secret-0123456789'
const ALICE = DEMO_USERS[0]!
const BOB = DEMO_USERS[1]!

/** Deterministic, distinct, GUID-shaped ids. */
function ids (prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`)
}

interface Page {
  '@odata.context'?: string
  '@odata.nextLink'?: string
  '@odata.count'?: number
  value: Array<Record<string, unknown>>
}

interface GraphErrorBody { error: { code: string, message: string, innerError?: Record<string, unknown> } }

t.test('Microsoft Graph stand-in', async t => {
  // The IdP's callback target is never fetched by the test (only the redirect URL matters).
  const target = http.createServer((_req, res) => res.end('ok'))
  await new Promise<void>(resolve => target.listen(0, '127.0.0.1', resolve))
  const redirectUri = `http://127.0.0.1:${(target.address() as AddressInfo).port}/cb`
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri] }], users: DEMO_USERS })

  const users: GraphUser[] = [
    { id: ALICE.oid, displayName: ALICE.name, mail: ALICE.email, userPrincipalName: ALICE.preferredUsername, jobTitle: 'Engineer' },
    { id: BOB.oid, displayName: BOB.name, mail: BOB.email, userPrincipalName: BOB.preferredUsername },
    { id: 'c0c0c0c0-0000-4000-8000-000000000003', displayName: 'Carol Alias', mail: 'carol@contoso.example', userPrincipalName: 'carol@contoso.example' }
  ]
  const engineering: GraphGroup = { id: 'e0e0e0e0-0000-4000-8000-000000000001', displayName: 'Engineering', mail: 'eng@contoso.example', description: 'All engineers', members: [ALICE.oid, BOB.oid, users[2]!.id], owners: [ALICE.oid] }
  const sales: GraphGroup = { id: 'e0e0e0e0-0000-4000-8000-000000000002', displayName: 'Sales', members: [ALICE.oid], owners: [], securityEnabled: false }
  const BOB_GROUPS = ids('b0b0b0b0', 250)
  const ROLE = '62e90394-69f5-4237-9190-012177145e10' // Global Administrator's template id
  const graph = await startGraph({
    issuer: idp.issuer,
    users,
    groups: [engineering, sales],
    memberOf: { [BOB.oid]: BOB_GROUPS },
    directoryRoles: { [ALICE.oid]: [ROLE] }
  })
  t.teardown(async () => {
    await graph.close()
    await idp.close()
    await new Promise<void>(resolve => {
      target.close(() => resolve())
      target.closeAllConnections()
    })
  })

  const config = await client.discovery(new URL(idp.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { execute: [client.allowInsecureRequests] })
  /** Signs in and returns [Graph token, app token, refresh token]. */
  async function tokensFor (username: string): Promise<{ graph: string, app: string, refresh: string }> {
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile offline_access',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state
    })
    const { chain } = await signIn(new Browser(), url.href, username, username)
    const signedIn = await client.authorizationCodeGrant(config, new URL(chain[chain.length - 1]!), { pkceCodeVerifier: verifier, expectedState: state })
    // As the gateway does: redeem the refresh token for Graph.
    const forGraph = await client.refreshTokenGrant(config, signedIn.refresh_token!, { scope: `${graph.url}/User.Read ${graph.url}/GroupMember.Read.All ${graph.url}/People.Read` })
    return { graph: forGraph.access_token, app: signedIn.access_token, refresh: forGraph.refresh_token! }
  }
  const alice = await tokensFor('alice')
  const bob = await tokensFor('bob')

  async function call (path: string, token: string | undefined, init: { method?: string, headers?: Record<string, string>, body?: unknown } = {}): Promise<{ status: number, headers: Headers, body: any }> {
    const res = await fetch(path.startsWith('http') ? path : graph.url + path, {
      method: init.method ?? 'GET',
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body)
    })
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
  }

  /** Follows @odata.nextLink to the end; returns every page. */
  async function allPages (path: string, token: string, headers: Record<string, string> = {}): Promise<Page[]> {
    const pages: Page[] = []
    let next: string | undefined = path
    while (next) {
      const res = await call(next, token, { headers })
      if (res.status !== 200) throw new Error(`${next}: ${res.status} ${JSON.stringify(res.body)}`)
      pages.push(res.body as Page)
      next = (res.body as Page)['@odata.nextLink']
    }
    return pages
  }

  t.test('authentication', async t => {
    const none = await call('/v1.0/me', undefined)
    t.equal(none.status, 401, 'no token: 401')
    t.equal((none.body as GraphErrorBody).error.code, 'InvalidAuthenticationToken', "Graph's error shape")
    t.ok((none.body as GraphErrorBody).error.innerError?.['request-id'], 'innerError with request-id')
    t.match(none.headers.get('www-authenticate'), /^Bearer /, 'WWW-Authenticate')

    const app = await call('/v1.0/me', alice.app)
    t.equal(app.status, 401, "the app's own access token (aud = client id) is refused")
    t.match((app.body as GraphErrorBody).error.message, /Invalid audience/)

    const other = await client.refreshTokenGrant(config, alice.refresh, { scope: 'https://contoso.sharepoint.com/AllSites.Read' })
    alice.refresh = other.refresh_token!
    const sp = await call('/v1.0/me', other.access_token)
    t.equal(sp.status, 401, 'a token for another resource is refused')
    t.equal((sp.body as GraphErrorBody).error.code, 'InvalidAuthenticationToken')

    const { privateKey } = await generateKeyPair('RS256')
    const forged = await new SignJWT({ oid: ALICE.oid, scp: 'User.Read' })
      .setProtectedHeader({ alg: 'RS256', kid: 'forged' })
      .setIssuer(idp.issuer).setAudience(graph.url).setIssuedAt().setExpirationTime('1h')
      .sign(privateKey)
    t.equal((await call('/v1.0/me', forged)).status, 401, 'a token not signed by the IdP is refused')
    t.equal((await call('/v1.0/me', 'not-a-jwt')).status, 401, 'garbage is refused')

    const me = await call('/v1.0/me', alice.graph)
    t.equal(me.status, 200, 'a Graph token from the IdP is accepted')
  })

  t.test('/me', async t => {
    const me = await call('/v1.0/me', alice.graph)
    t.match(me.body, { id: ALICE.oid, displayName: ALICE.name, mail: ALICE.email, userPrincipalName: ALICE.preferredUsername, jobTitle: 'Engineer' })
    t.match(me.headers.get('content-type'), /^application\/json/)
    const selected = await call('/v1.0/me?$select=id,displayName', bob.graph)
    const { '@odata.context': _context, ...props } = selected.body as Record<string, unknown>
    t.same(props, { id: BOB.oid, displayName: BOB.name }, '$select')
  })

  t.test('transitiveMemberOf pages over 250 groups', async t => {
    const pages = await allPages('/v1.0/me/transitiveMemberOf?$select=id', bob.graph)
    t.same(pages.map(p => p.value.length), [100, 100, 50], 'pages of pageSize (100)')
    for (const page of pages.slice(0, -1)) {
      const next = new URL(page['@odata.nextLink']!)
      t.equal(next.origin, graph.url, 'nextLink is absolute, on the Graph URL')
      t.equal(next.pathname, '/v1.0/me/transitiveMemberOf')
      t.ok(next.searchParams.get('$skiptoken'), 'with a $skiptoken')
      t.equal(next.searchParams.get('$select'), 'id', 'keeping $select')
    }
    t.notOk(pages[2]!['@odata.nextLink'], 'no nextLink on the last page')
    t.same(pages.flatMap(p => p.value), BOB_GROUPS.map(id => ({ '@odata.type': '#microsoft.graph.group', id })), 'every group once, in order, only id and @odata.type')

    const cast = await allPages('/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=200', bob.graph)
    t.same(cast.map(p => p.value.length), [200, 50], '$top sets the page size')

    const bad = await call('/v1.0/me/transitiveMemberOf?$skiptoken=nonsense', bob.graph)
    t.equal(bad.status, 400, 'a forged $skiptoken is refused')
    const tooBig = await call(`/v1.0/me/transitiveMemberOf?$top=${GRAPH_MAX_PAGE_SIZE + 1}`, bob.graph)
    t.equal(tooBig.status, 400, `$top above ${GRAPH_MAX_PAGE_SIZE} is refused`)
  })

  t.test('1000 groups (memberOf is mutable)', async t => {
    const saved = graph.memberOf.get(ALICE.oid)
    t.teardown(() => { graph.memberOf.set(ALICE.oid, saved ?? []) })
    const thousand = ids('a0a0a0a0', 1000)
    graph.memberOf.set(ALICE.oid, thousand)

    const pages = await allPages('/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id', alice.graph)
    t.equal(pages.length, 10, '10 pages of 100')
    t.same(pages.flatMap(p => p.value.map(v => v.id)), thousand, 'all 1000 ids')
    const big = await allPages(`/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id&$top=${GRAPH_MAX_PAGE_SIZE}`, alice.graph)
    t.same(big.map(p => p.value.length), [999, 1])

    const objects = await call('/v1.0/me/getMemberObjects', alice.graph, { method: 'POST', body: { securityEnabledOnly: false } })
    t.equal(objects.status, 200)
    t.same(objects.body.value, [...thousand, ROLE], 'getMemberObjects: every id (directory roles too) in one response')
    t.notOk('@odata.nextLink' in objects.body, 'never paged')
  })

  t.test('groups and directory roles; getMemberObjects', async t => {
    const all = await call('/v1.0/me/transitiveMemberOf', alice.graph)
    t.same(all.body.value.map((v: Record<string, unknown>) => v['@odata.type']), ['#microsoft.graph.group', '#microsoft.graph.group', '#microsoft.graph.directoryRole'], 'directory roles come along')
    t.match(all.body.value[0], { id: engineering.id, displayName: 'Engineering', mail: 'eng@contoso.example', securityEnabled: true })
    const groups = await call('/v1.0/me/transitiveMemberOf/microsoft.graph.group', alice.graph)
    t.same(groups.body.value.map((v: Record<string, unknown>) => v.id), [engineering.id, sales.id], 'the cast leaves only groups')

    const security = await call('/v1.0/me/getMemberObjects', alice.graph, { method: 'POST', body: { securityEnabledOnly: true } })
    t.same(security.body.value, [engineering.id], 'securityEnabledOnly: security groups only')
    const missing = await call('/v1.0/me/getMemberObjects', alice.graph, { method: 'POST', body: {} })
    t.equal(missing.status, 400, 'securityEnabledOnly is required')
    t.equal((await call('/v1.0/me/getMemberObjects', alice.graph)).status, 405, 'POST only')
  })

  t.test('ConsistencyLevel: eventual is required for $search and $count', async t => {
    const search = '/v1.0/users?$search=' + encodeURIComponent('"displayName:bob" OR "mail:bob"')
    const without = await call(search, alice.graph)
    t.equal(without.status, 400, '$search without the header: 400')
    t.equal((without.body as GraphErrorBody).error.code, 'Request_UnsupportedQuery')
    t.match((without.body as GraphErrorBody).error.message, /ConsistencyLevel: eventual/)

    const eventual = { ConsistencyLevel: 'eventual' }
    const found = await call(search, alice.graph, { headers: eventual })
    t.equal(found.status, 200)
    t.same(found.body.value.map((u: GraphUser) => u.id), [BOB.oid], 'displayName OR mail')
    const byWord = await call('/v1.0/users?$search=' + encodeURIComponent('"displayName:alias"'), alice.graph, { headers: eventual })
    t.same(byWord.body.value.map((u: GraphUser) => u.displayName), ['Carol Alias'], 'matches the start of any word')
    const byMail = await call('/v1.0/users?$search=' + encodeURIComponent('"mail:alice"') + '&$select=id,mail', alice.graph, { headers: eventual })
    t.same(byMail.body.value, [{ id: ALICE.oid, mail: ALICE.email }], 'mail, with $select')

    const groups = await call('/v1.0/groups?$search=' + encodeURIComponent('"displayName:eng"'), alice.graph, { headers: eventual })
    t.same(groups.body.value.map((g: GraphGroup) => g.id), [engineering.id], 'groups by displayName')
    t.equal((await call('/v1.0/groups?$search=' + encodeURIComponent('"displayName:eng"'), alice.graph)).status, 400, 'groups need the header too')

    t.equal((await call('/v1.0/users?$count=true', alice.graph)).status, 400, '$count without the header: 400')
    const counted = await call('/v1.0/users?$count=true&$top=1', alice.graph, { headers: eventual })
    t.equal(counted.body['@odata.count'], 3, '@odata.count with the header')
    t.equal(counted.body.value.length, 1)
    t.ok(counted.body['@odata.nextLink'], 'and paging')

    t.equal((await call('/v1.0/users?$search=bob', alice.graph, { headers: eventual })).status, 400, 'unquoted $search is refused')
    t.equal((await call('/v1.0/users?$search=' + encodeURIComponent('"jobTitle:x"'), alice.graph, { headers: eventual })).status, 400, 'unsupported property')
    t.equal((await call('/v1.0/users', alice.graph)).status, 200, 'a plain list needs no header')
  })

  t.test('people', async t => {
    const res = await call('/v1.0/me/people?$search=' + encodeURIComponent('"ali"') + '&$top=5', bob.graph)
    t.equal(res.status, 200, 'no ConsistencyLevel needed')
    t.same(res.body.value.map((p: { displayName: string }) => p.displayName), [ALICE.name, 'Carol Alias'])
    t.same(res.body.value[0].scoredEmailAddresses[0].address, ALICE.email, 'scoredEmailAddresses')
    const first = await call('/v1.0/me/people?$top=1', bob.graph)
    t.equal(first.body.value.length, 1, '$top')
    t.match(first.body['@odata.nextLink'], /\$skip=1/, 'pages with $skip')
    t.notOk(first.body.value.some((p: { id: string }) => p.id === BOB.oid), 'not oneself')
  })

  t.test('group members and owners', async t => {
    const members = await allPages(`/v1.0/groups/${engineering.id}/transitiveMembers?$top=2`, alice.graph)
    t.same(members.map(p => p.value.length), [2, 1], 'paged')
    t.same(members.flatMap(p => p.value.map(v => v['@odata.type'])), Array(3).fill('#microsoft.graph.user'))
    t.same(members.flatMap(p => p.value.map(v => v.id)), engineering.members)
    const owners = await call(`/v1.0/groups/${engineering.id}/owners`, alice.graph)
    t.match(owners.body.value, [{ '@odata.type': '#microsoft.graph.user', id: ALICE.oid, displayName: ALICE.name }])
    const missing = await call('/v1.0/groups/00000000-0000-0000-0000-000000000000/owners', alice.graph)
    t.equal(missing.status, 404)
    t.equal((missing.body as GraphErrorBody).error.code, 'Request_ResourceNotFound')
  })

  t.test('throttle, fail, setDown, requests', async t => {
    graph.throttle(2, 7)
    for (let i = 0; i < 2; i++) {
      const res = await call('/v1.0/me', alice.graph)
      t.equal(res.status, 429, 'throttled')
      t.equal(res.headers.get('retry-after'), '7', 'Retry-After in seconds')
      t.equal((res.body as GraphErrorBody).error.code, 'TooManyRequests')
    }
    t.equal((await call('/v1.0/me', alice.graph)).status, 200, 'then served again')

    graph.fail(1)
    const unavailable = await call('/v1.0/me', alice.graph)
    t.equal(unavailable.status, 503, 'fail() defaults to 503')
    t.equal((unavailable.body as GraphErrorBody).error.code, 'serviceNotAvailable')
    graph.fail(1, 500)
    t.equal((await call('/v1.0/me', alice.graph)).status, 500)
    t.equal((await call('/v1.0/me', alice.graph)).status, 200, 'failures are used up')
    t.throws(() => graph.fail(1, 404), 'only 5xx')

    graph.throttle(1, 1)
    graph.fail(1)
    t.equal((await call('/v1.0/me', undefined)).status, 429, 'knobs apply before authentication, throttle first')
    t.equal((await call('/v1.0/me', undefined)).status, 503)
    t.equal((await call('/v1.0/me', undefined)).status, 401)

    graph.setDown(true)
    t.equal((await call('/v1.0/me', alice.graph)).status, 503, 'down')
    graph.setDown(false)
    t.equal((await call('/v1.0/me', alice.graph)).status, 200, 'up again')

    const before = graph.requests.length
    await call('/v1.0/users?$search=' + encodeURIComponent('"displayName:bob"'), alice.graph, { headers: { ConsistencyLevel: 'eventual' } })
    const logged = graph.requests[before]!
    t.equal(logged.method, 'GET')
    t.equal(logged.path, '/v1.0/users')
    t.equal(new URLSearchParams(logged.query).get('$search'), '"displayName:bob"', 'raw query recorded')
    t.equal(logged.headers.consistencylevel, 'eventual', 'headers recorded')
    t.match(logged.headers.authorization, /^Bearer /)
  })

  t.test('unknown routes and versions', async t => {
    t.equal((await call('/v1.0/nothing', alice.graph)).status, 400)
    t.equal((await call('/beta/me', alice.graph)).status, 400)
    t.equal((await call('/v1.0/users/nobody@contoso.example', alice.graph)).status, 404)
    t.equal((await call(`/v1.0/users/${encodeURIComponent(BOB.preferredUsername)}`, alice.graph)).body.id, BOB.oid, 'users by userPrincipalName')
  })
})
