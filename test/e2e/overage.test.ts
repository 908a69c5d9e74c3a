// Group overage as Entra sends it: no `groups`, an `_claim_names` pointer instead. The gateway
// resolves membership from Graph (every page, 429 honoured), refuses when it cannot, keeps
// the groups across refreshes, and keeps X-Forwarded-Groups within its budget.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, type Stack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { DEMO_USERS, type IdpUser } from '../../dev/idp.js'

const groupId = (i: number): string => `6a1c0000-0000-4000-8000-${String(i).padStart(12, '0')}`
const many = (n: number): string[] => Array.from({ length: n }, (_, i) => groupId(i))
const carol: IdpUser = {
  username: 'carol',
  password: 'carol',
  oid: '3c3c3c3c-1111-4222-8333-444444444444',
  name: 'Carol Overage',
  email: 'carol@contoso.example',
  preferredUsername: 'carol@contoso.example',
  roles: ['ChatUser'],
  // Entra's overage shape: no groups claim, a pointer to (the retired) Azure AD Graph instead.
  extraClaims: { _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.windows.net/tenant/users/3c3c/getMemberObjects' } } }
}
const json = { accept: 'application/json' }

async function overageStack (groups: number, env: Record<string, string> = {}): Promise<Stack> {
  return await startStack({ users: [...DEMO_USERS, carol], graph: { memberOf: { [carol.oid]: many(groups) } }, env: { OPENID_REQUIRED_GROUPS: groupId(groups - 1), ...env } })
}

for (const count of [250, 1000]) {
  t.test(`${count} groups: resolved from Graph, every page; the header fits its budget`, async t => {
    const stack = await overageStack(count)
    t.teardown(() => stack.close())
    const browser = new Browser()
    const { response } = await signIn(browser, `${stack.url}/`, 'carol', 'carol')
    t.equal(response.status, 200, 'admitted by a group only Graph knows')
    const pages = (stack.graph?.requests ?? []).filter(r => r.path.startsWith('/v1.0/me/transitiveMemberOf')).length
    t.ok(pages >= 1)
    t.notOk((stack.graph?.requests ?? []).some(r => r.path.includes('graph.windows.net')), 'never the _claim_sources URL')
    const info = await (await browser.request(`${stack.url}/oauth2/userinfo`, { headers: json })).json() as Record<string, any>
    t.equal(info.groups.length, count)
    t.equal(info.groups_source, 'graph')
    const res = await browser.request(`${stack.url}/headers`, { headers: json })
    const h = (await res.json() as { headers: Record<string, string> }).headers
    t.equal(h['x-forwarded-groups-truncated'], 'true')
    t.equal(h['x-forwarded-groups'], groupId(count - 1), 'only the groups a rule names')
    t.ok((h['x-forwarded-identity'] ?? '').length < 8192, 'the identity JWT is bounded too')
  })
}

t.test('Graph down at sign-in: refused with a page that says membership could not be checked', async t => {
  const stack = await overageStack(250)
  t.teardown(() => stack.close())
  stack.graph?.setDown(true)
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'carol', 'carol')
  t.equal(response.status, 403)
  t.match(await response.text(), /could not be checked/)
  const denied = stack.logs.find(l => l.event === 'denied')
  t.equal(denied?.reason, 'groups_unavailable')
  t.match(String(denied?.authzError), /graph/)
})

t.test('throttled: Retry-After is honoured and the sign-in still succeeds', async t => {
  const stack = await overageStack(250)
  t.teardown(() => stack.close())
  stack.graph?.throttle(2, 0)
  const browser = new Browser()
  t.equal((await signIn(browser, `${stack.url}/`, 'carol', 'carol')).response.status, 200)
  t.ok((stack.graph?.requests ?? []).length >= 3, 'retried after the 429s')
})

t.test('throttled past the retries: refused, never zero groups and a pass', async t => {
  const stack = await overageStack(250)
  t.teardown(() => stack.close())
  stack.graph?.throttle(100, 0)
  const browser = new Browser()
  t.equal((await signIn(browser, `${stack.url}/`, 'carol', 'carol')).response.status, 403)
})

t.test('overage groups survive a refresh; Graph down at refresh refuses', async t => {
  const stack = await overageStack(250)
  t.teardown(() => stack.close())
  const store = stack.store
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'carol', 'carol')
  const expire = async (): Promise<void> => await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) + 5 })
  await expire()
  const refreshes = stack.idp.tokenRequests.refresh_token
  t.equal((await browser.request(`${stack.url}/api/x`, { headers: json })).status, 200, 'still admitted after the refresh')
  t.ok(stack.idp.tokenRequests.refresh_token > refreshes, 'a refresh happened')
  const info = await (await browser.request(`${stack.url}/oauth2/userinfo`, { headers: json })).json() as Record<string, any>
  t.equal(info.groups.length, 250, 'the groups were re-read, not lost')

  // Removed from the group in the directory: enforced at the next re-check.
  stack.graph?.memberOf.set(carol.oid, many(10))
  await expire()
  t.equal((await browser.request(`${stack.url}/api/x`, { headers: json })).status, 403)

  stack.graph?.memberOf.set(carol.oid, many(250))
  stack.graph?.setDown(true)
  await expire()
  const res = await browser.request(`${stack.url}/api/x`, { headers: json })
  t.equal(res.status, 403, 'Graph down at refresh: refused')
  t.equal((await res.json() as Record<string, string>).reason, 'groups_unavailable')
})
