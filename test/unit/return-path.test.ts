import t from 'tap'
import { safeReturnPath } from '../../src/policy/return-path.js'

t.test('same-origin relative paths are kept', async t => {
  for (const p of ['/', '/c/new', '/c/123?x=1&y=%20z', '/a/b#frag', '/api/convos?cursor=abc%3D%3D', '/%E2%9C%93']) {
    t.equal(safeReturnPath(p), p, p)
  }
})

t.test('open-redirect payloads fall back to /', async t => {
  const payloads = [
    '//evil.example', '///evil.example', '////evil.example', '/\\evil.example', '/\\/evil.example', '\\\\evil.example',
    '/%5Cevil', '/%5cevil.example', '/%2F%2Fevil.example', '/%2f/evil.example', '%2F%2Fevil.example', '/%252F%252Fevil.example',
    '/%255Cevil.example', 'https://evil.example', 'http://evil.example/', 'HTTPS://evil.example', 'javascript:alert(1)',
    'evil.example', '', ' /path', '/\t/evil.example', '/%09/evil.example', '/%0d%0aLocation:%20https://evil.example',
    '/\r\n/evil.example', '/ /evil.example', '/%20/evil.example', '/\u0000/evil', '/%00//evil', '//%09evil.example',
    '/.//evil.example', '/..//evil.example', 'data:text/html,x', '/%E0%A4%A', '/%%32%46%2Fevil.example', '/\u3000/evil.example'
  ]
  for (const p of payloads) t.equal(safeReturnPath(p), '/', JSON.stringify(p))
  t.equal(safeReturnPath(undefined), '/')
  t.equal(safeReturnPath(['/a']), '/')
  t.equal(safeReturnPath('/' + 'a'.repeat(3000)), '/')
})

t.test('dot segments are resolved without leaving the origin', async t => {
  t.equal(safeReturnPath('/a/../b'), '/b')
  t.equal(safeReturnPath('/../../etc'), '/etc')
})
