// The issuer template of Entra's multi-tenant endpoints, on any host: which discovered issuers
// match the configured one, and which token issuers may name this gateway's sessions.
import t from 'tap'
import { issuerMatches } from '../../src/oidc/flow.js'
import { issuerForTenant } from '../../src/oidc/issuer.js'
import { acceptableIssuer, linkKey } from '../../src/oidc/logout.js'

const A = '5f1c2b3a-7d4e-4c8b-9a6f-0e1d2c3b4a59'
const B = '7e7e7e7e-1111-4222-8333-444444444444'

t.test('discovery: the configured issuer, or the template for a multi-tenant endpoint, on any host', async t => {
  for (const host of ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn', '127.0.0.1:8080']) {
    t.ok(issuerMatches(`https://${host}/organizations/v2.0`, `https://${host}/{tenantid}/v2.0`), host)
    t.ok(issuerMatches(`https://${host}/common/v2.0`, `https://${host}/{tenantid}/v2.0`), host)
    t.ok(issuerMatches(`https://${host}/consumers/v2.0`, `https://${host}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0`), `${host}: consumers names the personal accounts' tenant`)
    t.ok(issuerMatches(`https://${host}/${A}/v2.0`, `https://${host}/${A}/v2.0`))
  }
  t.notOk(issuerMatches(`https://login.microsoftonline.us/${A}/v2.0`, 'https://login.microsoftonline.us/{tenantid}/v2.0'), 'a single tenant never accepts the template')
  t.notOk(issuerMatches('https://login.microsoftonline.us/organizations/v2.0', 'https://evil.example/{tenantid}/v2.0'), 'another host')
  t.notOk(issuerMatches('https://login.microsoftonline.us/organizations/v2.0', `https://login.microsoftonline.us/${B}/v2.0`), 'a concrete tenant for organizations')
  t.notOk(issuerMatches(`https://h/${A}/v2.0`, `https://h/${B}/v2.0`))
})

t.test('a token\'s issuer: the template filled with its own tid, for an allowed tenant', async t => {
  const template = 'https://login.microsoftonline.us/{tenantid}/v2.0'
  t.equal(issuerForTenant(template, A), `https://login.microsoftonline.us/${A}/v2.0`)
  t.equal(issuerForTenant(template, 'not-a-guid'), undefined)
  t.equal(issuerForTenant(template, undefined), undefined)
  t.equal(issuerForTenant(`https://h/${A}/v2.0`, B), `https://h/${A}/v2.0`, 'no template: the issuer itself')
  t.ok(acceptableIssuer(template, `https://login.microsoftonline.us/${A}/v2.0`, [A]))
  t.notOk(acceptableIssuer(template, `https://login.microsoftonline.us/${B}/v2.0`, [A]), 'tenant not allowed')
  t.notOk(acceptableIssuer(template, 'https://login.microsoftonline.us/x/y/v2.0', undefined), 'not a tenant id')
  t.notOk(acceptableIssuer(template, `https://evil.example/${A}/v2.0`, [A]))
  t.ok(acceptableIssuer(`https://h/${A}/v2.0`, `https://h/${A}/v2.0`, [A]))
  t.notOk(acceptableIssuer(`https://h/${A}/v2.0`, `https://h/${B}/v2.0`, [A, B]), 'no template: only the issuer')
})

t.test('link keys: one length, no caller bytes', async t => {
  const k = linkKey('sid', 'entra-gw:sess:*\r\n'.repeat(20))
  t.match(k, /^sid:[A-Za-z0-9_-]{43}$/)
  t.not(linkKey('sid', 'x'), linkKey('sub', 'x'))
})
