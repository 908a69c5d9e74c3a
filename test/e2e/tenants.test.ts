// Tenants: a single-tenant issuer admits only its own tenant; OPENID_ALLOWED_TENANTS (required
// for common/organizations) names which others may sign in. The check runs on the ID token's
// tid at the callback, whatever the issuer's host.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS, type IdpUser } from '../../dev/idp.js'

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
