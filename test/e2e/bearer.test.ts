// API clients with a bearer token from the configured issuer for this app.
import t from 'tap'
import { Browser, signIn } from '../helpers/browser.js'
import { startStack } from '../helpers/stack.js'
import { CLIENT_ID } from '../helpers/stack.js'
import { DEMO_USERS } from '../../dev/idp.js'
import { sessionId } from '../helpers/session.js'
import { decodeJwt } from 'jose'
import type { TokenSet } from '../../src/tokens/jar.js'

const alice = DEMO_USERS.find(u => u.username === 'alice')!
const json = { accept: 'application/json' }

t.test('bearer tokens: valid, expired, another audience, another tenant, not a JWT', async t => {
  const stack = await startStack({ env: { BEARER_AUTH: 'true', FORWARD_ACCESS_TOKEN: 'true', OPENID_REQUIRED_ROLE: 'ChatUser' } })
  t.teardown(() => stack.close())
  // A real access token for this app, from a real sign-in.
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  const viaSession = await (await browser.request(`${stack.url}/headers`, { headers: json })).json() as { headers: Record<string, string> }
  const token = viaSession.headers['x-forwarded-access-token'] ?? ''
  const call = async (authorization: string): Promise<Response> => await fetch(`${stack.url}/api/messages`, { headers: { ...json, authorization } })

  const ok = await call(`Bearer ${token}`)
  t.equal(ok.status, 200, 'a valid token passes without a session')
  const seen = (await ok.json() as { headers: Record<string, string> }).headers
  t.equal(seen['x-forwarded-user'], alice.oid)
  t.equal(seen['x-forwarded-roles'], 'ChatUser')
  t.equal(seen.authorization, `Bearer ${token}`, 'the client\'s own Authorization passes')

  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: stack.idp.issuer, aud: CLIENT_ID, sub: 's', oid: alice.oid, tid: stack.idp.tenantId, roles: ['ChatUser'], iat: now - 60, nbf: now - 60, exp: now + 600 }
  t.equal((await call(`Bearer ${await stack.idp.signJwt(claims)}`)).status, 200, 'api://-less client id audience')
  t.equal((await call(`Bearer ${await stack.idp.signJwt({ ...claims, aud: `api://${CLIENT_ID}` })}`)).status, 200, 'api://<client-id> audience')

  const expired = await call(`Bearer ${await stack.idp.signJwt({ ...claims, iat: now - 7200, nbf: now - 7200, exp: now - 3600 })}`)
  t.equal(expired.status, 401)
  t.match(expired.headers.get('www-authenticate') ?? '', /invalid_token/)
  t.match((await expired.json() as Record<string, string>).message, /expired/)

  const otherTenant = await call(`Bearer ${await stack.idp.signJwt({ ...claims, tid: '99999999-9999-4999-8999-999999999999' })}`)
  t.equal(otherTenant.status, 401)
  t.match((await otherTenant.json() as Record<string, string>).message, /tenant/)

  // A delegated token (scp, no roles: Entra omits an empty roles claim) for a user without the role.
  const noRole = await call(`Bearer ${await stack.idp.signJwt({ ...claims, roles: undefined, scp: 'access_as_user' })}`)
  t.equal(noRole.status, 403, 'the same role rules apply')

  const forged = (await stack.idp.signJwt(claims)).replace(/\.[^.]+$/, '.AAAA')
  t.equal((await call(`Bearer ${forged}`)).status, 401, 'a bad signature')

  // Not ours: left alone for the upstream, judged by the session (none here).
  const otherAudience = await call(`Bearer ${await stack.idp.signJwt({ ...claims, aud: 'https://graph.microsoft.com' })}`)
  t.equal(otherAudience.status, 401)
  t.equal((await otherAudience.json() as Record<string, string>).error, 'unauthenticated')
  const notJwt = await call('Bearer librechat-opaque-value')
  t.equal((await notJwt.json() as Record<string, string>).error, 'unauthenticated')

  // With a session, a bearer value that is not ours goes through untouched (LibreChat's SPA).
  const spa = await browser.request(`${stack.url}/headers`, { headers: { ...json, authorization: 'Bearer librechat-own-jwt.x.y' } })
  t.equal(spa.status, 200)
  t.equal((await spa.json() as { headers: Record<string, string> }).headers.authorization, 'Bearer librechat-own-jwt.x.y')
})

t.test('an ID token is not an API token: refused with 401, never judged by the session', async t => {
  // End-session on: the gateway keeps the ID token (for id_token_hint) in its side entry.
  const stack = await startStack({ env: { BEARER_AUTH: 'true', FORWARD_ACCESS_TOKEN: 'true', OPENID_REQUIRED_ROLE: 'ChatUser', OPENID_USE_END_SESSION_ENDPOINT: 'true' } })
  t.teardown(() => stack.close())
  const browser = new Browser()
  await signIn(browser, `${stack.url}/`, 'alice', 'alice')
  // The real tokens the IdP issued at this sign-in: the ID token from the gateway's sealed
  // side entry, the access token as the gateway forwards it.
  const sid = sessionId(browser, stack.url, stack.config.cookieName)
  const kept = stack.app.sealer.openJson(await stack.store.getAux(`tokens:${sid}`), `tokens:${sid}`) as TokenSet | undefined
  const forwarded = (await (await browser.request(`${stack.url}/headers`, { headers: json })).json() as { headers: Record<string, string> }).headers['x-forwarded-access-token']
  if (kept?.idToken === undefined || forwarded === undefined) throw new Error('no tokens for the session')
  const set = { idToken: kept.idToken, accessToken: forwarded }
  const id = decodeJwt(set.idToken)
  t.equal(id.aud, CLIENT_ID, 'the ID token names this client, as an access token does')
  t.equal(id.iss, decodeJwt(set.accessToken).iss)
  t.type(id.nonce, 'string')
  t.same(id.roles, ['ChatUser'], 'and carries the app roles, as in Entra')
  const call = async (authorization: string, cookie = false): Promise<Response> =>
    await (cookie ? browser.request(`${stack.url}/api/messages`, { headers: { ...json, authorization } }) : fetch(`${stack.url}/api/messages`, { headers: { ...json, authorization } }))
  const before = stack.upstream.requests.length

  const attack = await call(`Bearer ${set.idToken}`)
  t.equal(attack.status, 401, 'the ID token is refused')
  t.match(attack.headers.get('www-authenticate') ?? '', /invalid_token.*ID token/)
  t.match(await attack.json(), { error: 'invalid_token', message: /ID token, not an access token/ })
  const withSession = await call(`Bearer ${set.idToken}`, true)
  t.equal(withSession.status, 401, 'refused even next to a valid session: it looks like ours')
  t.equal(stack.upstream.requests.length, before, 'nothing reached the upstream')
  t.ok(stack.logs.some(l => l.reason === 'invalid_bearer' && /ID token/.test(String(l.detail))))

  // The access token from the same sign-in: scp, no nonce, still accepted.
  t.type(decodeJwt(set.accessToken).scp, 'string')
  t.equal(decodeJwt(set.accessToken).nonce, undefined)
  t.equal((await call(`Bearer ${set.accessToken}`)).status, 200, 'the access token passes')

  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: stack.idp.issuer, aud: CLIENT_ID, sub: 's', oid: alice.oid, tid: stack.idp.tenantId, iat: now - 60, nbf: now - 60, exp: now + 600 }
  const bare = await call(`Bearer ${await stack.idp.signJwt(claims)}`)
  t.equal(bare.status, 401, 'neither scp nor roles: not an access token')
  t.match(await bare.json(), { error: 'invalid_token', message: /no scp or roles/ })
  t.equal((await call(`Bearer ${await stack.idp.signJwt({ ...claims, scp: 'access_as_user', roles: ['ChatUser'], nonce: 'n' })}`)).status, 401, 'a nonce marks an ID token even with scp')
  t.equal((await call(`Bearer ${await stack.idp.signJwt({ ...claims, scp: 'access_as_user', roles: ['ChatUser'] })}`)).status, 200, 'delegated token with scp and roles')
})
