// The attacks and faults a security review found, each as a test over real HTTP.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack, CLIENT_ID, CLIENT_SECRET } from '../helpers/stack.js'
import { startIdp, DEMO_USERS } from '../../dev/idp.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const bob = DEMO_USERS.find(u => u.username === 'bob')!
const json = { accept: 'application/json' }

t.test('login CSRF: a callback whose state names an object property signs nobody in', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const metadata = await (await fetch(`${stack.idp.issuer}/.well-known/openid-configuration`)).json() as { authorization_endpoint: string }
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    // The attacker asks the IdP for a code of their own: no PKCE challenge, no nonce, that state.
    const attack = new URL(metadata.authorization_endpoint)
    attack.search = new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: stack.config.redirectUri, response_type: 'code', scope: 'openid profile email offline_access', state: name }).toString()
    const attacker = new Browser()
    const { chain } = await signIn(attacker, attack.href, 'bob', 'bob')
    const callback = chain.find(u => u.startsWith(stack.config.redirectUri + '?'))
    t.ok(callback, `the IdP issued the attacker a code for state=${name}`)
    // The victim has a sign-in of their own pending, then opens the attacker's callback link.
    const victim = new Browser()
    await (await victim.request(`${stack.url}/c/new`)).arrayBuffer()
    t.ok(victim.cookie(stack.url, stack.config.loginCookieName), 'the victim has a pending sign-in')
    const res = await victim.request(callback!)
    t.equal(res.status, 400, `state=${name} is refused`)
    t.match(await res.text(), /belong to a sign-in started in this browser/)
    t.equal(victim.cookie(stack.url, stack.config.cookieName), undefined, 'no session was made')
    const page = await victim.request(`${stack.url}/headers`, { headers: json })
    t.equal(page.status, 401, 'the victim is not signed in as anyone')
  }
  t.notOk(stack.logs.some(l => l.event === 'sign_in'), 'nobody was signed in')
  t.notOk(stack.upstream.requests.some(r => r.headers['x-forwarded-user'] === bob.oid), 'no request went upstream as the attacker')
})

t.test('sign-in floods: 5,000 anonymous navigations leave a signed-in user signed in', async t => {
  const stack = await startStack({ env: { SESSION_MEMORY_MAX: '1000' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const cookie = `${stack.config.cookieName}=${browser.cookie(stack.url, stack.config.cookieName) ?? ''}`
  const navigate = { accept: 'text/html', 'sec-fetch-mode': 'navigate' }
  let redirects = 0
  for (let batch = 0; batch < 50; batch++) {
    const answers = await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const res = await fetch(`${stack.url}/c/${batch}-${i}`, { headers: navigate, redirect: 'manual' })
      await res.arrayBuffer()
      return res.status
    }))
    redirects += answers.filter(s => s === 302).length
  }
  t.equal(redirects, 5000, 'every anonymous navigation was sent to sign in')
  t.equal((stack.store as { size: number }).size, 1, 'the store holds only the signed-in session')
  const res = await fetch(`${stack.url}/headers`, { headers: { ...json, cookie } })
  t.equal(res.status, 200, 'alice is still signed in')
})

t.test('public paths forward identity only for a user the policy admits there', async t => {
  const dir = t.testdir({})
  const rules = join(dir, 'rules.yaml')
  await writeFile(rules, 'public:\n  - /api/config\n')
  const stack = await startStack({ env: { AUTHZ_RULES_FILE: rules, OPENID_REQUIRED_ROLE: 'ChatUser' } })
  t.teardown(() => stack.close())
  const seen = async (who: string): Promise<Record<string, unknown>> => {
    const browser = new Browser()
    await signIn(browser, `${stack.url}/`, who, who)
    const before = stack.upstream.requests.length
    const res = await browser.request(`${stack.url}/api/config`, { headers: json })
    t.equal(res.status, 200, `${who}: a public path is served`)
    await res.arrayBuffer()
    return stack.upstream.requests.slice(before).at(-1)?.headers as Record<string, unknown>
  }
  t.equal((await seen('alice'))['x-forwarded-user'], alice.oid, 'an admitted user is named')
  const refused = await seen('bob')
  t.equal(refused['x-forwarded-user'], undefined, 'a user the policy refuses is forwarded as nobody')
  t.equal(refused['x-forwarded-identity'], undefined)
})

t.test('behind a trusted TLS proxy the sign-in sets one session cookie, with every flag', async t => {
  const publicOrigin = 'https://chat.example.test'
  const idp = await startIdp({ clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [`${publicOrigin}/oauth/openid/callback`] }], users: DEMO_USERS })
  t.teardown(() => idp.close())
  const stack = await startStack({ idp, env: { DOMAIN_SERVER: publicOrigin, TRUSTED_PROXIES: '127.0.0.1' } })
  t.teardown(() => stack.close())
  const browser = new Browser({ tlsProxy: { publicOrigin, gateway: stack.url } })
  const result = await signIn(browser, `${publicOrigin}/c/new`, 'alice', 'alice')
  t.equal(result.response.status, 200, 'signed in through the TLS proxy and sent on to the page')
  const callback = browser.history.find(h => h.url.startsWith(`${publicOrigin}/oauth/openid/callback?`))
  t.ok(callback, 'the callback went through the proxy')
  const sessionCookies = callback!.setCookies.filter(c => c.startsWith('__Host-entra-gw='))
  t.equal(sessionCookies.length, 1, 'exactly one session cookie')
  const cookie = sessionCookies[0] ?? ''
  for (const flag of [/; Secure/, /; HttpOnly/, /; SameSite=Lax/, /; Path=\//]) t.match(cookie, flag)
  t.notMatch(cookie, /Domain=/i)
  const login = callback!.setCookies.filter(c => c.startsWith('__Host-entra-gw-login='))
  t.equal(login.length, 1, 'the used login transaction is cleared')
  t.match(login[0] ?? '', /Max-Age=0; .*; Secure/)
})
