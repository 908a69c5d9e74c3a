// The guide's required role, in each token kind and path form, over real HTTP.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS, type IdpUser } from '../../dev/idp.js'

const users: IdpUser[] = [
  ...DEMO_USERS,
  { username: 'kc', password: 'kc', oid: '0b9c2e1f-5a3d-4c6e-8f70-1a2b3c4d5e6f', name: 'Keycloak Shaped', preferredUsername: 'kc@contoso.com', roles: [], extraClaims: { realm_access: { roles: ['chat'] } } },
  { username: 'solo', password: 'solo', oid: '1c9c2e1f-5a3d-4c6e-8f70-1a2b3c4d5e6f', name: 'String Role', preferredUsername: 'solo@contoso.com', extraClaims: { app_role: 'ChatUser' } }
]

async function statusAfterSignIn (url: string, user: string): Promise<{ status: number, body: string, browser: Browser }> {
  const browser = new Browser()
  const { response } = await signIn(browser, `${url}/private`, user, user)
  return { status: response.status, body: await response.text(), browser }
}

for (const kind of ['id', 'access', 'userinfo']) {
  t.test(`OPENID_REQUIRED_ROLE read from the ${kind} token`, async t => {
    const stack = await startStack({ users, env: { OPENID_REQUIRED_ROLE: 'Admin,ChatUser', OPENID_REQUIRED_ROLE_TOKEN_KIND: kind } })
    t.teardown(() => stack.close())
    const ok = await statusAfterSignIn(stack.url, 'alice')
    t.equal(ok.status, 200, 'alice has ChatUser')
    const before = stack.upstream.requests.length
    const no = await statusAfterSignIn(stack.url, 'bob')
    t.equal(no.status, 403, 'bob has neither')
    t.match(no.body, /requires one of the roles Admin, ChatUser/)
    t.match(no.body, /action="\/oauth2\/sign_out"/, 'a sign-out button')
    t.match(no.body, /bob@contoso\.example/, 'names the signed-in account')
    const api = await no.browser.request(`${stack.url}/api/convos`, { headers: { accept: 'application/json' } })
    t.equal(api.status, 403)
    t.same((await api.json() as Record<string, unknown>).required_roles, ['Admin', 'ChatUser'])
    t.equal(stack.upstream.requests.length, before, 'nothing proxied for bob')
    const denied = stack.logs.find(l => l.event === 'denied')
    t.equal(denied?.reason, 'missing_role')
  })
}

t.test('dot paths and string claims', async t => {
  const stack = await startStack({ users, env: { OPENID_REQUIRED_ROLE: 'chat', OPENID_REQUIRED_ROLE_PARAMETER_PATH: 'realm_access.roles' } })
  t.teardown(() => stack.close())
  t.equal((await statusAfterSignIn(stack.url, 'kc')).status, 200, 'realm_access.roles')
  t.equal((await statusAfterSignIn(stack.url, 'alice')).status, 403)

  const s2 = await startStack({ users, env: { OPENID_REQUIRED_ROLE: 'ChatUser', OPENID_REQUIRED_ROLE_PARAMETER_PATH: 'app_role' } })
  t.teardown(() => s2.close())
  t.equal((await statusAfterSignIn(s2.url, 'solo')).status, 200, 'a string claim is a one-element list')
  t.equal((await statusAfterSignIn(s2.url, 'alice')).status, 403, 'matching is exact, on the configured path only')
})
