// What a person meets when Entra refuses the sign-in: a plain sentence saying what happened, a
// line for the administrator with the fix, the AADSTS code in small print with the request id,
// and "try again" only where trying again can help. The log keeps Microsoft's own words.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { DEMO_USERS } from '../../dev/idp.js'
import { UNASSIGNED_USER } from '../../dev/idp/users.js'
import { explainEntraError } from '../../src/oidc/entra-errors.js'

const carol = UNASSIGNED_USER

const text = (html: string): string => html.replace(/<[^>]+>/g, ' ').replace(/&#39;/g, "'").replace(/\s+/g, ' ')

t.test('AADSTS50105 (not assigned to the app): who can fix it, and no "try again"', async t => {
  const stack = await startStack({ users: [...DEMO_USERS, carol] })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/c/chat`, 'carol', 'carol')
  t.equal(response.status, 400)
  const html = await response.text()
  const said = text(html)
  t.match(said, 'Your account has not been given access to this application.', 'what happened, plainly')
  t.match(said, 'For your administrator: Assign the user, or a group they belong to, to the application', 'who fixes it, and how')
  t.match(said, /Code AADSTS50105 \(idp_error\) · request id [0-9a-f-]{36}/, 'the code and the request id in small print')
  t.notMatch(said, 'Try signing in again', 'no "try again": it cannot help')
  t.match(html, 'href="/oauth2/start?prompt=select_account&amp;rd=%2Fc%2Fchat"', 'a different account may help, back to where the user was going')
  t.notMatch(said, 'state_unknown')
  const line = stack.logs.find(l => l.event === 'sign_in_failed')
  t.equal(line?.idpError, 'AADSTS50105', 'the log has the code')
  t.match(line?.idpDescription, /^AADSTS50105: Your administrator has configured the application/, "and Microsoft's description")
  t.equal(stack.upstream.requests.filter(r => r.url !== '/health').length, 0, 'nothing reached the upstream')

  const api = await browser.request(`${stack.url}/c/chat`, { headers: { accept: 'application/json' } })
  t.equal(api.status, 401, 'and no session was made')
})

t.test('AADSTS7000215 (wrong client secret): the administrator is told which setting', async t => {
  const stack = await startStack({ env: { OPENID_CLIENT_SECRET: 'the-secret-id-not-its-value-0000' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  const { response } = await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  t.equal(response.status, 400)
  const said = text(await response.text())
  t.match(said, "The sign-in service refused this application's own credentials")
  t.match(said, 'For your administrator: OPENID_CLIENT_SECRET is wrong: use the client secret\'s Value (not its Secret ID)')
  t.match(said, /Code AADSTS7000215 \(token_error\)/)
  t.notMatch(said, 'Try signing in again')
  t.notMatch(said, 'Use a different account', 'another account would fail the same way')
  const line = stack.logs.find(l => l.event === 'sign_in_failed')
  t.equal(line?.idpError, 'AADSTS7000215')
  t.match(line?.idpDescription, /^AADSTS7000215: Invalid client secret provided/)
  t.notMatch(stack.rawLogs(), 'the-secret-id-not-its-value', 'the secret itself is never logged')
})

t.test('a failure that trying again mends offers it (state_expired is not an IdP error)', async t => {
  const stack = await startStack()
  t.teardown(() => stack.close())
  const browser = new Browser()
  // A callback this browser did not start: the plain words, and a way to start over.
  const res = await browser.request(`${stack.url}/oauth/openid/callback?code=x&state=y`)
  t.equal(res.status, 400)
  const said = text(await res.text())
  t.match(said, "doesn't belong to a sign-in started in this browser")
  t.match(said, 'Try signing in again')
  t.match(said, /Code state_unknown · request id/)
})

t.test('every AADSTS code people meet has words for the user and for the administrator', async t => {
  const codes = [50105, 50011, 50020, 50076, 50079, 53003, 65001, 700016, 7000215, 7000222, 90015, 700054, 500011, 50058, 50059, 50173, 70043, 700082, 70008]
  for (const code of codes) {
    const e = explainEntraError('invalid_request', `AADSTS${code}: something Microsoft said.\r\nTrace ID: x`)
    t.ok(e !== undefined && e.user.length > 20 && e.admin.length > 20, `AADSTS${code} is explained`)
    t.equal(e?.code, `AADSTS${code}`)
    t.notMatch(e?.user, /AADSTS|OPENID_/, `AADSTS${code}: the user's sentence has no jargon`)
  }
  // Trying again helps after MFA and an expired grant, not when an admin must act.
  t.equal(explainEntraError('invalid_request', 'AADSTS50076: x')?.retry, true)
  t.equal(explainEntraError('invalid_grant', 'AADSTS50173: x')?.retry, true)
  for (const code of [50105, 53003, 65001, 7000215, 7000222, 700054]) t.equal(explainEntraError('x', `AADSTS${code}: x`)?.retry, false, `AADSTS${code}: no retry`)
  t.equal(explainEntraError('access_denied', undefined)?.code, 'access_denied', 'a plain access_denied')
  t.equal(explainEntraError('server_error', 'AADSTS1: unknown'), undefined, 'an unknown code keeps the generic text')
})
