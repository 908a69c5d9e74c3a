// Tenants: a single-tenant issuer admits only its own tenant; OPENID_ALLOWED_TENANTS (required
// for common/organizations) names which others may sign in. The check runs on the ID token's
// tid at the callback, whatever the issuer's host.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS, DEFAULT_TENANT_ID, type IdpUser } from '../../dev/idp.js'
import { editSession } from '../helpers/session.js'

const OTHER_TENANT = '7e7e7e7e-1111-4222-8333-444444444444'
const guest: IdpUser = {
  username: 'guest',
  password: 'guest',
  oid: '8f8f8f8f-1111-4222-8333-444444444444',
  name: 'Guest From Fabrikam',
  email: 'guest@fabrikam.example',
  preferredUsername: 'guest@fabrikam.example',
  extraClaims: { tid: OTHER_TENANT }
}

t.test('a token from another tenant is refused; listed, it is admitted', async t => {
  const stack = await startStack({ users: [...DEMO_USERS, guest] })
  t.teardown(() => stack.close())
  const refused = await signIn(new Browser(), `${stack.url}/`, 'guest', 'guest')
  t.equal(refused.response.status, 400)
  t.match(await refused.response.text(), /organization that may not use this application/)
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'tenant_not_allowed'))
  t.equal((await signIn(new Browser(), `${stack.url}/`, 'alice', 'alice')).response.status, 200, 'the issuer\'s own tenant')

  const listed = await startStack({ users: [...DEMO_USERS, guest], env: { OPENID_ALLOWED_TENANTS: OTHER_TENANT } })
  t.teardown(() => listed.close())
  const b = new Browser()
  t.equal((await signIn(b, `${listed.url}/`, 'guest', 'guest')).response.status, 200)
  const info = await (await b.request(`${listed.url}/oauth2/userinfo`, { headers: { accept: 'application/json' } })).json() as Record<string, string>
  t.equal(info.tid, OTHER_TENANT)
})

t.test('organizations on a host that is not Microsoft\'s: the {tenantid} template, each token\'s own tenant, the allow-list', async t => {
  const mallory: IdpUser = { ...guest, username: 'mallory', password: 'mallory', oid: '8f8f8f8f-1111-4222-8333-555555555555', tenantId: OTHER_TENANT, extraClaims: { tid: DEFAULT_TENANT_ID } }
  const stack = await startStack({ users: [...DEMO_USERS, { ...guest, extraClaims: undefined, tenantId: OTHER_TENANT }, mallory], idpOptions: { realm: 'organizations' }, env: { OPENID_ALLOWED_TENANTS: DEFAULT_TENANT_ID } })
  t.teardown(() => stack.close())
  t.match(stack.idp.issuer, /^http:\/\/127\.0\.0\.1:\d+\/organizations\/v2\.0$/)
  const meta = await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json() as { issuer: string }
  t.equal(meta.issuer, `${stack.idp.origin}/{tenantid}/v2.0`, 'the metadata carries the template')

  const b = new Browser()
  t.equal((await signIn(b, `${stack.url}/`, 'alice', 'alice')).response.status, 200, 'an allowed tenant signs in')
  const info = await (await b.request(`${stack.url}/oauth2/userinfo`, { headers: { accept: 'application/json' } })).json() as Record<string, string>
  t.equal(info.tid, DEFAULT_TENANT_ID)

  const refused = await signIn(new Browser(), `${stack.url}/`, 'guest', 'guest')
  t.equal(refused.response.status, 400, 'another tenant is refused')
  t.match(await refused.response.text(), /organization that may not use this application/)
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'tenant_not_allowed'))

  // Issued under one tenant's issuer while naming an allowed tenant: refused whatever tid says.
  const forged = await signIn(new Browser(), `${stack.url}/`, 'mallory', 'mallory')
  t.equal(forged.response.status, 400)
  t.ok(stack.logs.some(l => l.event === 'sign_in_failed' && l.reason === 'token_invalid' && /iss/.test(String(l.detail))), 'iss and tid disagree')

  // A refresh reads the refreshed ID token the same way.
  await editSession(stack.store, b, stack.url, stack.config.cookieName, s => { s.accessExp = Math.floor(Date.now() / 1000) - 1 })
  t.equal((await b.request(`${stack.url}/api/x`, { headers: { accept: 'application/json' } })).status, 200, 'refreshed')
  t.ok(stack.logs.some(l => l.event === 'token_refresh'))
})

t.test('bearer tokens of a multi-tenant issuer: their own tenant\'s issuer, an allowed tenant', async t => {
  const stack = await startStack({ idpOptions: { realm: 'organizations' }, env: { OPENID_ALLOWED_TENANTS: DEFAULT_TENANT_ID, BEARER_AUTH: 'true' } })
  t.teardown(() => stack.close())
  const now = Math.floor(Date.now() / 1000)
  const alice = DEMO_USERS.find(u => u.username === 'alice')!
  const claims = { iss: `${stack.idp.origin}/${DEFAULT_TENANT_ID}/v2.0`, aud: stack.config.clientId, tid: DEFAULT_TENANT_ID, oid: alice.oid, sub: 's', scp: 'access_as_user', roles: ['ChatUser'], iat: now, nbf: now, exp: now + 600 }
  const call = async (c: Record<string, unknown>): Promise<number> => (await fetch(`${stack.url}/api/x`, { headers: { accept: 'application/json', authorization: `Bearer ${await stack.idp.signJwt(c)}` } })).status
  t.equal(await call(claims), 200, 'an allowed tenant\'s token')
  t.equal(await call({ ...claims, tid: OTHER_TENANT, iss: `${stack.idp.origin}/${OTHER_TENANT}/v2.0` }), 401, 'another tenant')
  t.equal(await call({ ...claims, tid: OTHER_TENANT }), 401, 'iss of one tenant, tid of another')
})
