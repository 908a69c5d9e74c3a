import t from 'tap'
import { checkRequiredRole } from '../../src/policy/required-role.js'
import { decide } from '../../src/policy/decide.js'
import { claimValues } from '../../src/principal/claims.js'
import { isNavigation } from '../../src/policy/request-kind.js'
import { EMPTY_RULES } from '../../src/policy/rules.js'

t.test('any one listed role admits; matching is exact', async t => {
  const rule = { roles: ['ChatUser', 'Admin'], tokenKind: 'id' as const, path: ['roles'] }
  t.ok(checkRequiredRole(rule, ['Admin']).allowed)
  t.notOk(checkRequiredRole(rule, ['chatuser']).allowed)
  t.notOk(checkRequiredRole(rule, []).allowed)
  t.ok(checkRequiredRole(undefined, []).allowed)
})

t.test('dot paths and string claims', async t => {
  t.same(claimValues({ realm_access: { roles: ['a', 'b'] } }, ['realm_access', 'roles']), ['a', 'b'])
  t.same(claimValues({ roles: 'solo' }, ['roles']), ['solo'])
  t.same(claimValues({ roles: [1, 'x'] }, ['roles']), ['x'])
  t.same(claimValues({ realm_access: 'nope' }, ['realm_access', 'roles']), [])
  t.same(claimValues({}, ['a', 'b', 'c']), [])
})

t.test('decisions say what is required', async t => {
  const d = decide({ requiredRole: { roles: ['ChatUser'], tokenKind: 'id', path: ['roles'] }, requiredGroups: [], rules: EMPTY_RULES }, { roleValues: [], roles: [], groups: [] })
  t.equal(d.allowed, false)
  if (!d.allowed) t.equal(d.requirement, 'requires the role ChatUser')
  const d2 = decide({ requiredRole: { roles: ['A', 'B'], tokenKind: 'id', path: ['roles'] }, requiredGroups: [], rules: EMPTY_RULES }, { roleValues: [], roles: [], groups: [] })
  if (!d2.allowed) t.equal(d2.requirement, 'requires one of the roles A, B')
})

t.test('navigation versus API call', async t => {
  t.ok(isNavigation('GET', { 'sec-fetch-mode': 'navigate' }))
  t.ok(isNavigation('GET', { accept: 'text/html,application/xhtml+xml' }))
  t.notOk(isNavigation('GET', { accept: 'application/json' }))
  t.notOk(isNavigation('POST', { 'sec-fetch-mode': 'navigate', accept: 'text/html' }))
  t.notOk(isNavigation('GET', {}))
})
