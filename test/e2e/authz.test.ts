// Authorization as Entra sends it: required groups, per-path rules with encoded and dotted
// variants, public paths, and roles/groups re-read while the session lives.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { editSession } from '../helpers/session.js'
import { DEMO_USERS } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const aliceGroup = alice.groups?.[0] as string

t.test('OPENID_REQUIRED_GROUPS: any one group admits', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_GROUPS: `00000000-0000-0000-0000-00000000dead,${aliceGroup}` } })
  t.teardown(() => stack.close())
  const a = new Browser()
  t.equal((await signIn(a, `${stack.url}/x`, 'alice', 'alice')).response.status, 200)
  const b = new Browser()
  const denied = (await signIn(b, `${stack.url}/x`, 'bob', 'bob')).response
  t.equal(denied.status, 403)
  const body = await denied.text()
  t.match(body, /requires membership in one of 2 groups/)
  t.match(body, /bob@contoso\.example/)
  t.match(body, /Use a different account/)
  const info = await (await b.request(`${stack.url}/oauth2/userinfo`, { headers: { accept: 'application/json' } })).json() as Record<string, any>
  t.equal(info.authorization.allowed, false)
  t.equal(info.authorization.required_groups.satisfied, false)
  t.equal(info.authorization.reason, 'missing_group')
})

t.test('per-path rules, public paths, and encoded or dotted variants', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-rules-'))
  const file = join(dir, 'rules.yaml')
  writeFileSync(file, 'public:\n  - /api/config\nrules:\n  - path: /api/admin\n    roles: [ADMIN]\n')
  const stack = await startStack({ env: { AUTHZ_RULES_FILE: file } })
  t.teardown(() => stack.close())

  const anon = await fetch(`${stack.url}/api/config`, { headers: { accept: 'application/json' } })
  t.equal(anon.status, 200, 'a public path needs no sign-in')
  t.equal((await anon.json() as { headers: Record<string, string> }).headers['x-forwarded-user'], undefined)
  t.equal((await fetch(`${stack.url}/api/configx`, { headers: { accept: 'application/json' } })).status, 401)

  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const before = stack.upstream.requests.length
  for (const path of ['/api/admin', '/api/admin/users', '/api//admin', '/api/%61dmin', '/api/x/../admin', '/API/Admin', '/api%2Fadmin', '/api/./admin/']) {
    const res = await browser.request(`${stack.url}${path}`, { headers: { accept: 'application/json' } })
    t.equal(res.status, 403, path)
    const body = await res.json() as Record<string, unknown>
    t.equal(body.reason, 'path_role')
  }
  t.equal(stack.upstream.requests.length, before, 'none reached the upstream')
  t.equal((await browser.request(`${stack.url}/api/convos`, { headers: { accept: 'application/json' } })).status, 200)
  t.equal((await browser.request(`${stack.url}/api/%E0%A4%A`, { headers: { accept: 'application/json' } })).status, 400, 'an undecodable path is refused')
})

t.test('an invalid rules file stops the start naming the rule', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-rules-'))
  const file = join(dir, 'rules.json')
  writeFileSync(file, JSON.stringify({ rules: [{ path: '/api/admin', roles: ['ADMIN'] }, { path: '/api/x' }] }))
  await t.rejects(startStack({ env: { AUTHZ_RULES_FILE: file } }), /AUTHZ_RULES_FILE: .*rules\[1\] \(\/api\/x\) requires nothing/)
})

t.test('a role removed mid-session is enforced at the next re-check, without signing in again', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_ROLE: 'ChatUser', AUTHZ_RECHECK_SECONDS: '60' } })
  t.teardown(() => stack.close())
  const store = stack.store
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const api = async (): Promise<number> => (await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })).status
  t.equal(await api(), 200)

  // The administrator removes the role; within the re-check bound nothing changes yet.
  const u = stack.idp.users.get('alice')!
  u.roles = []
  t.equal(await api(), 200, 'before the bound the session is trusted')

  // Time passes: the last check is now older than AUTHZ_RECHECK_SECONDS.
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.user.checkedAt = Date.now() - 61_000 })
  t.equal(await api(), 403, 'the next request re-reads the roles and refuses')
  t.ok(stack.logs.some(l => l.event === 'token_refresh'))
  t.ok(stack.logs.some(l => l.event === 'denied' && l.reason === 'missing_role'))

  // And given back: the next re-check lets her in again.
  u.roles = ['ChatUser']
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.user.checkedAt = Date.now() - 61_000 })
  t.equal(await api(), 200)
})

t.test('a group removed mid-session is enforced at the next re-check', async t => {
  const stack = await startStack({ env: { OPENID_REQUIRED_GROUPS: aliceGroup } })
  t.teardown(() => stack.close())
  const store = stack.store
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  stack.idp.users.get('alice')!.groups = []
  await editSession(store, browser, stack.url, stack.config.cookieName, s => { s.user.checkedAt = Date.now() - 901_000 })
  const res = await browser.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })
  t.equal(res.status, 403)
  t.equal((await res.json() as Record<string, unknown>).reason, 'missing_group')
})
