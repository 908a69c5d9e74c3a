import t from 'tap'
import { bearerPrincipal, displayName, resolvePrincipal, StringPool } from '../../src/principal/principal.js'

const never = async (): Promise<never> => { throw new Error('not asked for') }
const sources = { overageGroups: never, accessTokenClaims: () => ({}), userInfoClaims: never }
// Every string its own copy, as JSON.parse of a token payload gives them.
const claimsOf = (o: Record<string, unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(o)) as Record<string, unknown>
const base = { sub: 's1', oid: 'o1', tid: 't1', name: 'Zoë', email: 'zoe@contoso.example', preferred_username: 'zoe@contoso.example', roles: ['ChatUser'], groups: ['g1', 'g2'] }

t.test('a principal from ID token claims, with equal strings shared', async t => {
  const pool = new StringPool()
  const a = await resolvePrincipal(claimsOf(base), undefined, sources, 1000, pool, 2000)
  const b = await resolvePrincipal(claimsOf({ ...base, oid: 'o2', sub: 's2' }), undefined, sources, 1000, pool, 2000)
  t.match(a, { userId: 'o1', tenantId: 't1', roles: ['ChatUser'], groups: ['g1', 'g2'], roleValues: ['ChatUser'], groupsOverage: false, signedInAt: 1000, checkedAt: 2000 })
  t.equal(a.roleValues, a.roles, 'role values that equal the roles are the same list')
  t.equal(a.preferredUsername, a.email)
  t.equal(displayName(a), 'zoe@contoso.example')
  t.ok(a.groups.every((g, i) => g === b.groups[i]), 'equal groups')
  t.notOk('authzError' in a, 'no error field when there is none')
})

t.test('overage: groups from Graph, or refused with the reason when Graph fails', async t => {
  const overage = claimsOf({ ...base, groups: undefined, _claim_names: { groups: 'src1' } })
  const ok = await resolvePrincipal(overage, { tokenKind: 'id', path: ['groups'] }, { ...sources, overageGroups: async () => ['g9'] }, 0)
  t.same(ok.groups, ['g9'])
  t.same(ok.roleValues, ['g9'], 'PARAMETER_PATH=groups sees the overage groups')
  t.ok(ok.groupsOverage)
  const down = await resolvePrincipal(overage, undefined, { ...sources, overageGroups: async () => { throw new Error('graph: 503') } }, 0)
  t.same(down.groups, [])
  t.equal(down.authzError, 'graph: 503')
})

t.test('role values from the token the rule names', async t => {
  const fromAccess = await resolvePrincipal(claimsOf(base), { tokenKind: 'access', path: ['scp'] }, { ...sources, accessTokenClaims: () => ({ scp: 'Chat.Use' }) }, 0)
  t.same(fromAccess.roleValues, ['Chat.Use'])
  const fromUserInfo = await resolvePrincipal(claimsOf(base), { tokenKind: 'userinfo', path: ['app', 'roles'] }, { ...sources, userInfoClaims: async () => ({ app: { roles: ['Admin'] } }) }, 0)
  t.same(fromUserInfo.roleValues, ['Admin'])
})

t.test('a bearer principal cannot resolve group overage: refused', async t => {
  const p = bearerPrincipal(claimsOf({ ...base, hasgroups: true }), undefined)
  t.match(p.authzError, /overage/)
  t.same(bearerPrincipal(claimsOf(base), ['roles']).roleValues, ['ChatUser'])
})
