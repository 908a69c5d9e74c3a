import t from 'tap'
import { compileRules, normalizePath, findRule, isPublic, loadRulesFile, type AuthzRules } from '../../src/policy/rules.js'
import { decide } from '../../src/policy/decide.js'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const compiled = (doc: unknown): AuthzRules => {
  const r = compileRules(doc)
  if ('problem' in r) throw new Error(r.problem)
  return r.rules
}

t.test('normalization: decoded once, slashes collapsed, dot segments resolved, case folded', async t => {
  t.equal(normalizePath('/api/admin'), '/api/admin')
  t.equal(normalizePath('/api//admin/'), '/api/admin')
  t.equal(normalizePath('/api/%61dmin'), '/api/admin')
  t.equal(normalizePath('/api/x/../admin?y=1'), '/api/admin')
  t.equal(normalizePath('/api/./admin#f'), '/api/admin')
  t.equal(normalizePath('/API/Admin'), '/api/admin')
  t.equal(normalizePath('/api%2fadmin'), '/api/admin')
  t.equal(normalizePath('/api\\admin'), '/api/admin')
  t.equal(normalizePath('/../../api/admin'), '/api/admin')
  t.equal(normalizePath('/api/%E0%A4%A'), undefined, 'undecodable is refused')
})

t.test('encoded and dotted variants meet the protected rule', async t => {
  const rules = compiled({ rules: [{ path: '/api/admin', roles: ['ADMIN'] }, { path: '/api', groups: ['g-api'] }], public: ['/api/config', 'GET /images/'] })
  const subject = { roleValues: [], roles: ['USER'], groups: ['g-api'] }
  for (const url of ['/api/admin', '/api/admin/users', '/api//admin', '/api/%61dmin/x', '/api/x/../admin', '/API/ADMIN', '/api%2Fadmin', '/api/./admin']) {
    const path = normalizePath(url) as string
    const d = decide({ requiredRole: undefined, requiredGroups: [], rules }, subject, { method: 'GET', path })
    t.equal(d.allowed, false, url)
    if (!d.allowed) t.equal(d.reason, 'path_role')
  }
  t.equal(findRule(rules, 'GET', '/api/administrator')?.prefix, '/api', 'a prefix matches whole segments only')
  t.equal(decide({ requiredRole: undefined, requiredGroups: [], rules }, { ...subject, roles: ['ADMIN'] }, { method: 'GET', path: '/api/admin' }).allowed, true)
  t.equal(decide({ requiredRole: undefined, requiredGroups: [], rules }, { ...subject, groups: [] }, { method: 'GET', path: '/api/convos' }).allowed, false)
  t.ok(isPublic(rules, 'POST', '/api/config'))
  t.ok(isPublic(rules, 'GET', '/images/a.png'))
  t.notOk(isPublic(rules, 'POST', '/images/a.png'), 'method-limited')
  t.notOk(isPublic(rules, 'GET', '/api/configuration'))
})

t.test('methods on a rule', async t => {
  const rules = compiled({ rules: [{ path: '/api/agents', methods: ['POST', 'delete'], roles: ['BUILDER'] }] })
  t.equal(findRule(rules, 'GET', '/api/agents'), undefined)
  t.equal(findRule(rules, 'DELETE', '/api/agents/1')?.prefix, '/api/agents')
})

t.test('an invalid rules file names the rule and the fault', async t => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /must hold an object/],
    [{ rule: [] }, /unknown key "rule"/],
    [{ rules: {} }, /"rules" must be a list/],
    [{ rules: [{ roles: ['A'] }] }, /rules\[0\] needs "path"/],
    [{ rules: [{ path: 'api', roles: ['A'] }] }, /rules\[0\] needs "path"/],
    [{ rules: [{ path: '/a', roles: ['A'] }, { path: '/b' }] }, /rules\[1\] \(\/b\) requires nothing/],
    [{ rules: [{ path: '/a', roles: 'A', methods: ['FETCH'] }] }, /rules\[0\] \(\/a\): "methods"/],
    [{ rules: [{ path: '/a', roles: [1] }] }, /"roles" must be a list/],
    [{ rules: [{ path: '/a', groups: ['g'], extra: 1 }] }, /unknown key "extra"/],
    [{ public: ['/'] }, /would make everything public/],
    [{ public: ['nope'] }, /public\[0\]/]
  ]
  for (const [doc, expected] of cases) {
    const r = compileRules(doc)
    t.ok('problem' in r && expected.test(r.problem), `${JSON.stringify(doc)} → ${'problem' in r ? r.problem : 'accepted'}`)
  }
})

t.test('files: YAML and JSON, unreadable and malformed', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'))
  writeFileSync(join(dir, 'r.yaml'), 'public:\n  - /api/config\nrules:\n  - path: /api/admin\n    roles: [ADMIN]\n')
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ rules: [{ path: '/x', groups: ['g'] }] }))
  writeFileSync(join(dir, 'bad.yaml'), 'rules: [\n')
  const y = loadRulesFile(join(dir, 'r.yaml'))
  t.ok('rules' in y && y.rules.rules[0]?.prefix === '/api/admin')
  const j = loadRulesFile(join(dir, 'r.json'))
  t.ok('rules' in j && j.rules.namedGroups[0] === 'g')
  const bad = loadRulesFile(join(dir, 'bad.yaml'))
  t.ok('problem' in bad && /not valid YAML/.test(bad.problem))
  const missing = loadRulesFile(join(dir, 'none.yaml'))
  t.ok('problem' in missing && /cannot read .*ENOENT/.test(missing.problem))
})
