// Which claims fill the user name, name and email: LibreChat's OPENID_USERNAME_CLAIM,
// OPENID_NAME_CLAIM and OPENID_EMAIL_CLAIM, with LibreChat's orders when they are unset.
import t from 'tap'
import { identityFromClaims } from '../../src/principal/claims.js'
import { evaluateArithmetic } from '../../src/config/readers.js'

const entra = { sub: 's', oid: 'o', tid: 't', name: 'Alice Ångström', preferred_username: 'alice@contoso.com', upn: 'alice@contoso.onmicrosoft.com' }

t.test('unset: the orders LibreChat uses (the ID token\'s name first)', async t => {
  const id = identityFromClaims(entra)
  t.equal(id.name, 'Alice Ångström')
  t.equal(id.email, 'alice@contoso.com', 'email, else preferred_username, else upn')
  t.equal(id.preferredUsername, 'alice@contoso.com')
  t.equal(identityFromClaims({ sub: 's', upn: 'u@x' }).email, 'u@x')
  t.equal(identityFromClaims({ sub: 's', email: '', preferred_username: 'p@x' }).email, 'p@x', 'an empty email is skipped')

  // The user name: preferred_username, else username, else email (LibreChat's convertToUsername).
  t.equal(identityFromClaims({ sub: 's', username: 'al', email: 'a@x' }).preferredUsername, 'al')
  t.equal(identityFromClaims({ sub: 's', email: 'a@x' }).preferredUsername, 'a@x')
  t.equal(identityFromClaims({ sub: 's', username: ['a', 'b'] }).preferredUsername, 'a_b', 'a list joined with _')

  // The name without `name`: given + family, given, family, username, email.
  t.equal(identityFromClaims({ sub: 's', given_name: 'Alice', family_name: 'Ångström' }).name, 'Alice Ångström')
  t.equal(identityFromClaims({ sub: 's', given_name: 'Alice' }).name, 'Alice')
  t.equal(identityFromClaims({ sub: 's', family_name: 'Ångström' }).name, 'Ångström')
  t.equal(identityFromClaims({ sub: 's', username: 'al', email: 'a@x' }).name, 'al')
  t.equal(identityFromClaims({ sub: 's', email: 'a@x' }).name, 'a@x')
})

t.test('set: the named claim', async t => {
  const claims = { ...entra, employee_id: 'E-1001', display_name: 'Dr. Alice', mail: 'alice@mail.contoso.com' }
  const id = identityFromClaims(claims, { username: 'employee_id', name: 'display_name', email: 'mail' })
  t.equal(id.preferredUsername, 'E-1001')
  t.equal(id.name, 'Dr. Alice')
  t.equal(id.email, 'alice@mail.contoso.com')

  // As in LibreChat: a missing username or name claim leaves it empty; a missing or
  // non-string email claim falls back to email, preferred_username, upn.
  const missing = identityFromClaims(entra, { username: 'employee_id', name: 'display_name', email: 'mail' })
  t.equal(missing.preferredUsername, undefined)
  t.equal(missing.name, undefined)
  t.equal(missing.email, 'alice@contoso.com')
  t.equal(identityFromClaims({ ...entra, mail: ['x'] }, { email: 'mail' }).email, 'alice@contoso.com', 'not a string: the fallback')
  t.equal(identityFromClaims(entra, { name: 'toString', username: '__proto__' }).name, undefined, 'never a prototype member')
  t.equal(identityFromClaims(entra, { username: '__proto__' }).preferredUsername, undefined)
})

t.test("LibreChat's arithmetic for milliseconds", async t => {
  t.equal(evaluateArithmetic('900000'), 900000)
  t.equal(evaluateArithmetic('1000 * 60 * 15'), 900000)
  t.equal(evaluateArithmetic('(1000 * 60 * 60 * 24) * 7'), 604800000)
  t.equal(evaluateArithmetic('1000*60 + 500 - 100 / 2'), 60450)
  for (const bad of ['', 'fifteen', '1000 *', '(1000', '1000)', 'process.exit()', '1e3', '1000 ** 2', '2 3']) {
    t.equal(evaluateArithmetic(bad), undefined, JSON.stringify(bad))
  }
})
