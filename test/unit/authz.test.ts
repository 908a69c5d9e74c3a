import t from 'tap'
import { decide } from '../../src/policy/decide.js'
import { EMPTY_RULES } from '../../src/policy/rules.js'
import { groupsHeader, identityHeaders } from '../../src/proxy/headers.js'
import { hasGroupOverage } from '../../src/principal/claims.js'
import { expectedIssuers } from '../../src/auth/bearer.js'
import { loadConfig, ConfigError, MSA_TENANT_ID } from '../../src/config.js'

const base = { requiredRole: undefined, requiredGroups: [] as string[], rules: EMPTY_RULES }

t.test('required groups: any one admits; with a role, both must hold', async t => {
  const cfg = { ...base, requiredGroups: ['g1', 'g2'] }
  t.equal(decide(cfg, { roleValues: [], roles: [], groups: ['g2'] }).allowed, true)
  const d = decide(cfg, { roleValues: [], roles: [], groups: ['g3'] })
  t.equal(d.allowed, false)
  if (!d.allowed) t.equal(d.requirement, 'requires membership in one of 2 groups')
  const both = { ...cfg, requiredRole: { roles: ['ChatUser'], tokenKind: 'id' as const, path: ['roles'] } }
  t.equal(decide(both, { roleValues: ['ChatUser'], roles: [], groups: ['g1'] }).allowed, true)
  t.equal(decide(both, { roleValues: [], roles: [], groups: ['g1'] }).allowed, false)
  t.equal(decide(both, { roleValues: ['ChatUser'], roles: [], groups: [] }).allowed, false)
})

t.test('groups that could not be checked are never a pass', async t => {
  const d = decide(base, { roleValues: [], roles: [], groups: [], authzError: 'graph: 503' })
  t.equal(d.allowed, false)
  if (!d.allowed) t.equal(d.reason, 'groups_unavailable')
})

t.test('overage markers', async t => {
  t.ok(hasGroupOverage({ _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: 'https://graph.windows.net/x' } } }))
  t.ok(hasGroupOverage({ hasgroups: true }))
  t.notOk(hasGroupOverage({ groups: ['a'] }))
})

t.test('X-Forwarded-Groups fits its budget', async t => {
  const many = Array.from({ length: 1000 }, (_, i) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`)
  const kept = [many[10] as string, many[900] as string]
  const h = groupsHeader(many, { maxGroupBytes: 4096, keepGroups: kept })
  t.equal(h.truncated, true)
  t.equal(h.value, kept.join(','))
  const small = groupsHeader(many.slice(0, 5), { maxGroupBytes: 4096, keepGroups: [] })
  t.equal(small.truncated, false)
  const headers = identityHeaders({ userId: 'u', sub: 's', oid: 'u', tenantId: 't', name: undefined, email: undefined, preferredUsername: undefined, roles: [], groups: many }, { maxGroupBytes: 4096, keepGroups: kept })
  t.equal(headers['x-forwarded-groups-truncated'], 'true')
  t.ok((headers['x-forwarded-groups'] ?? '').length <= 4096)
})

t.test('tenants: multi-tenant issuers need an allow-list; single-tenant admits its own', async t => {
  const env = { OPENID_CLIENT_ID: '8f7e6d5c-4b3a-4291-8c7d-6e5f4a3b2c1d', OPENID_CLIENT_SECRET: 's', OPENID_SESSION_SECRET: 'x'.repeat(32), DOMAIN_SERVER: 'https://chat.example.com', UPSTREAM_URL: 'http://api:3080' }
  for (const segment of ['common', 'organizations']) {
    try {
      loadConfig({ ...env, OPENID_ISSUER: `https://login.microsoftonline.com/${segment}/v2.0` })
      t.fail('must refuse')
    } catch (err) {
      t.match((err as ConfigError).problems[0], /^OPENID_ALLOWED_TENANTS is not set/)
    }
  }
  const tenant = '11111111-2222-3333-4444-555555555555'
  const multi = loadConfig({ ...env, OPENID_ISSUER: 'https://login.microsoftonline.com/common/v2.0', OPENID_ALLOWED_TENANTS: tenant.toUpperCase() })
  t.same(multi.allowedTenants, [tenant])
  t.notOk(multi.allowedTenants?.includes(MSA_TENANT_ID), 'personal accounts are refused unless listed')
  t.equal(multi.multiTenant, true)
  const single = loadConfig({ ...env, OPENID_ISSUER: `https://login.microsoftonline.com/${tenant}/v2.0` })
  t.same(single.allowedTenants, [tenant])
  t.same(expectedIssuers(multi, tenant), ['https://login.microsoftonline.com/common/v2.0', `https://login.microsoftonline.com/${tenant}/v2.0`, `https://sts.windows.net/${tenant}/`])
})
