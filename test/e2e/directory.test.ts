// Directory search for LibreChat's sharing dialogs, answered from the Graph stand-in with the
// user's own token: users, groups, transitive members with and without owners.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { DEMO_USERS } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const users = [
  { id: alice.oid, displayName: alice.name, mail: alice.email, userPrincipalName: alice.preferredUsername },
  { id: 'd1d1d1d1-0000-4000-8000-000000000001', displayName: 'Dana Directory', mail: 'dana@contoso.example', userPrincipalName: 'dana@contoso.example', jobTitle: 'Engineer' },
  { id: 'd1d1d1d1-0000-4000-8000-000000000002', displayName: 'Dan Owner', mail: 'dan@contoso.example', userPrincipalName: 'dan@contoso.example' }
]
const group = { id: 'a0a0a0a0-0000-4000-8000-000000000001', displayName: 'Data Science', mail: 'ds@contoso.example', description: 'DS team', members: [users[1]!.id], owners: [users[2]!.id] }
const xhr = { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest', 'sec-fetch-site': 'same-origin' }

async function directoryStack (owners: boolean): Promise<{ stack: Stack, browser: Browser }> {
  const stack = await startStack({
    graph: { users, groups: [group] },
    env: { OPENID_GRAPH_SCOPES: 'User.Read,People.Read,GroupMember.Read.All,User.ReadBasic.All', OPENID_REUSE_TOKENS: 'true', USE_ENTRA_ID_FOR_PEOPLE_SEARCH: 'true', ENTRA_ID_INCLUDE_OWNERS_AS_MEMBERS: String(owners) }
  })
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  return { stack, browser }
}

t.test('search users and groups', async t => {
  const { stack, browser } = await directoryStack(false)
  t.teardown(() => stack.close())
  const res = await browser.request(`${stack.url}/oauth2/directory/search?q=da&type=all`, { headers: xhr })
  t.equal(res.status, 200)
  t.equal(res.headers.get('cache-control'), 'no-store')
  const body = await res.json() as { users: Array<Record<string, unknown>>, groups: Array<Record<string, unknown>> }
  t.ok(body.users.some(u => u.id === users[1]!.id && u.email === 'dana@contoso.example'), 'Dana found')
  t.same(body.groups, [{ id: group.id, name: 'Data Science', email: 'ds@contoso.example', description: 'DS team' }])
  t.ok((stack.graph?.requests ?? []).filter(r => r.path === '/v1.0/users' || r.path === '/v1.0/groups').every(r => r.headers.consistencylevel === 'eventual'), 'ConsistencyLevel: eventual')
  const usersOnly = await (await browser.request(`${stack.url}/oauth2/directory/search?q=dan&type=user`, { headers: xhr })).json() as { groups: unknown[] }
  t.same(usersOnly.groups, [])
  t.equal((await browser.request(`${stack.url}/oauth2/directory/search?q=`, { headers: xhr })).status, 400)
  t.equal((await browser.request(`${stack.url}/oauth2/directory/search?q=da&type=robots`, { headers: xhr })).status, 400)
  t.equal((await browser.request(`${stack.url}/oauth2/directory/search?q=da`, { headers: { accept: 'application/json' } })).status, 403, 'same-origin scripts only')

  stack.graph?.throttle(1, 0)
  t.equal((await browser.request(`${stack.url}/oauth2/directory/search?q=da&type=group`, { headers: xhr })).status, 200, '429 honoured, then answered')
  stack.graph?.setDown(true)
  const down = await browser.request(`${stack.url}/oauth2/directory/search?q=da&type=group`, { headers: xhr })
  t.equal(down.status, 502)
  t.equal((await down.json() as Record<string, string>).error, 'graph_unavailable')
})

for (const owners of [false, true]) {
  t.test(`group members, owners ${owners ? 'included' : 'left out'}`, async t => {
    const { stack, browser } = await directoryStack(owners)
    t.teardown(() => stack.close())
    const res = await browser.request(`${stack.url}/oauth2/directory/groups/${group.id}/members`, { headers: xhr })
    t.equal(res.status, 200)
    const body = await res.json() as { members: Array<{ id: string, owner: boolean }>, complete: boolean }
    const ids = body.members.map(m => m.id).sort()
    t.same(ids, owners ? [users[1]!.id, users[2]!.id].sort() : [users[1]!.id])
    if (owners) t.equal(body.members.find(m => m.id === users[2]!.id)?.owner, true)
    t.equal(body.complete, true)
    t.equal((await browser.request(`${stack.url}/oauth2/directory/groups/not-a-guid/members`, { headers: xhr })).status, 400)
  })
}

t.test('off unless USE_ENTRA_ID_FOR_PEOPLE_SEARCH', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  await (await browser.request(`${stack.url}/oauth2/directory/search?q=da`, { headers: xhr })).arrayBuffer()
  t.equal(stack.upstream.requests.at(-1)?.url, '/oauth2/directory/search?q=da', 'not the gateway\'s route: an ordinary proxied path')
})
