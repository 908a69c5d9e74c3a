// Directory search for LibreChat's sharing dialogs (the guide's USE_ENTRA_ID_FOR_PEOPLE_SEARCH):
// users and groups from Microsoft Graph with the signed-in user's own delegated token, so
// Entra's permissions decide what each user may see.
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config.js'
import type { Problem } from '../pages/plugin.js'
import { guardBrowserApi } from './browser-api.js'
import { graphCollect, GraphError, type GraphOptions } from '../graph/client.js'
import { graphToken } from '../tokens/principal.js'
import { RefreshError, revocationOf } from '../tokens/jar.js'

export interface DirectoryUser { id: string, name: string, email: string | null, upn: string | null, job_title: string | null, source: 'people' | 'directory' }
export interface DirectoryGroup { id: string, name: string, email: string | null, description: string | null }
export interface DirectoryMember { id: string, name: string, email: string | null, upn: string | null, owner: boolean }

interface GraphUser { id?: string, displayName?: string, mail?: string | null, userPrincipalName?: string | null, jobTitle?: string | null, scoredEmailAddresses?: Array<{ address?: string }>, '@odata.type'?: string }
interface GraphGroup { id?: string, displayName?: string, mail?: string | null, description?: string | null }

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const EVENTUAL = { consistencylevel: 'eventual' }
const MAX_RESULTS = 25
const MAX_MEMBER_PAGES = 10

/** A search term safe inside Graph's `$search="..."`: no quotes or backslashes, bounded. */
export function searchTerm (q: unknown): string | undefined {
  if (typeof q !== 'string') return undefined
  const t = q.replace(/["\\]/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 100)
  return t.length >= 1 ? t : undefined
}

const toUser = (u: GraphUser, source: DirectoryUser['source']): DirectoryUser | undefined =>
  typeof u.id === 'string'
    ? { id: u.id, name: u.displayName ?? '', email: u.mail ?? u.scoredEmailAddresses?.[0]?.address ?? null, upn: u.userPrincipalName ?? null, job_title: u.jobTitle ?? null, source }
    : undefined

export default async function directoryRoutes (app: FastifyInstance, opts: { config: GatewayConfig }): Promise<void> {
  const { config } = opts
  if (!config.peopleSearch) return
  const graph: GraphOptions = app.tokens.graph

  const failed = (err: unknown): Problem => {
    if (revocationOf(err) !== undefined) return { status: 401, error: 'session_expired', message: 'Your session has ended; sign in again.', jsonOnly: true, json: { login_url: `${config.publicOrigin}/oauth2/sign_in` } }
    if (err instanceof GraphError) return { status: err.status === 429 ? 503 : 502, error: 'graph_unavailable', message: 'Microsoft Graph did not answer the search.', json: { graph_error: err.code } }
    if (err instanceof RefreshError) return { status: err.reason === 'invalid_grant' ? 401 : 502, error: 'token_unavailable', message: 'A Graph token could not be obtained.' }
    throw err
  }

  app.get('/oauth2/directory/search', async (request, reply) => {
    const user = await guardBrowserApi(app, config, request, reply)
    if (user === undefined) return reply
    const query = request.query as Record<string, unknown>
    const q = searchTerm(query.q)
    const type = typeof query.type === 'string' ? query.type : 'all'
    if (q === undefined) return reply.problem({ status: 400, error: 'invalid_request', message: 'Give a search term: ?q=...' })
    if (!['user', 'group', 'all'].includes(type)) return reply.problem({ status: 400, error: 'invalid_request', message: 'type must be user, group or all.' })
    try {
      const token = await app.tokens.withJar(request, async jar => await graphToken({ config, jar }))
      const encoded = encodeURIComponent(q)
      const users: DirectoryUser[] = []
      const groups: DirectoryGroup[] = []
      if (type !== 'group') {
        const [people, directory] = await Promise.all([
          graphCollect<GraphUser>(graph, token, `/v1.0/me/people?$search="${encoded}"&$top=${MAX_RESULTS}`, undefined, MAX_RESULTS),
          graphCollect<GraphUser>(graph, token, `/v1.0/users?$search=${encodeURIComponent(`"displayName:${q}" OR "mail:${q}"`)}&$top=${MAX_RESULTS}&$select=id,displayName,mail,userPrincipalName,jobTitle`, EVENTUAL, MAX_RESULTS)
        ])
        const seen = new Set<string>()
        for (const [list, source] of [[people.items, 'people'], [directory.items, 'directory']] as const) {
          for (const u of list) {
            const mapped = toUser(u, source)
            if (mapped !== undefined && !seen.has(mapped.id)) { seen.add(mapped.id); users.push(mapped) }
          }
        }
      }
      if (type !== 'user') {
        const found = await graphCollect<GraphGroup>(graph, token, `/v1.0/groups?$search=${encodeURIComponent(`"displayName:${q}"`)}&$top=${MAX_RESULTS}&$select=id,displayName,mail,description`, EVENTUAL, MAX_RESULTS)
        for (const g of found.items) if (typeof g.id === 'string') groups.push({ id: g.id, name: g.displayName ?? '', email: g.mail ?? null, description: g.description ?? null })
      }
      return { users: users.slice(0, MAX_RESULTS), groups }
    } catch (err) {
      // A claims challenge from Graph: the session ends (withJar ends it for a revoked grant).
      await app.tokens.endIfRevoked(request, err)
      const f = failed(err)
      request.log.warn({ event: 'graph_failed', user: user.userId, call: 'search', detail: (err as Error).message }, 'directory search failed')
      return reply.problem(f)
    }
  })

  app.get('/oauth2/directory/groups/:id/members', async (request, reply) => {
    const user = await guardBrowserApi(app, config, request, reply)
    if (user === undefined) return reply
    const id = (request.params as { id: string }).id
    if (!GUID.test(id)) return reply.problem({ status: 400, error: 'invalid_request', message: 'The group id must be an object id (GUID).' })
    try {
      const token = await app.tokens.withJar(request, async jar => await graphToken({ config, jar }))
      const select = '$select=id,displayName,mail,userPrincipalName'
      const bounded = { ...graph, maxPages: MAX_MEMBER_PAGES }
      const [members, owners] = await Promise.all([
        graphCollect<GraphUser>(bounded, token, `/v1.0/groups/${id}/transitiveMembers?${select}&$top=100`, EVENTUAL),
        config.includeOwnersAsMembers ? graphCollect<GraphUser>(bounded, token, `/v1.0/groups/${id}/owners?${select}&$top=100`, EVENTUAL) : Promise.resolve({ items: [], complete: true })
      ])
      const out = new Map<string, DirectoryMember>()
      for (const u of members.items) {
        if (typeof u.id !== 'string' || (u['@odata.type'] !== undefined && u['@odata.type'] !== '#microsoft.graph.user')) continue
        out.set(u.id, { id: u.id, name: u.displayName ?? '', email: u.mail ?? null, upn: u.userPrincipalName ?? null, owner: false })
      }
      for (const u of owners.items) {
        if (typeof u.id !== 'string' || (u['@odata.type'] !== undefined && u['@odata.type'] !== '#microsoft.graph.user')) continue
        const existing = out.get(u.id)
        out.set(u.id, { id: u.id, name: u.displayName ?? existing?.name ?? '', email: u.mail ?? existing?.email ?? null, upn: u.userPrincipalName ?? existing?.upn ?? null, owner: true })
      }
      return { members: [...out.values()], complete: members.complete && owners.complete }
    } catch (err) {
      await app.tokens.endIfRevoked(request, err)
      const f = failed(err)
      request.log.warn({ event: 'graph_failed', user: user.userId, call: 'members', detail: (err as Error).message }, 'group members failed')
      return reply.problem(f)
    }
  })
}
