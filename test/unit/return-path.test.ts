import t from 'tap'
import { safeReturnPath, safeReturnTarget } from '../../src/policy/return-path.js'

t.test('same-origin relative paths are kept', async t => {
  for (const p of ['/', '/c/new', '/c/123?x=1&y=%20z', '/a/b#frag', '/api/convos?cursor=abc%3D%3D', '/%E2%9C%93']) {
    t.equal(safeReturnPath(p), p, p)
  }
})

const PAYLOADS = [
  '//evil.example', '///evil.example', '////evil.example', '/\\evil.example', '/\\/evil.example', '\\\\evil.example',
  '/%5Cevil', '/%5cevil.example', '/%2F%2Fevil.example', '/%2f/evil.example', '%2F%2Fevil.example', '/%252F%252Fevil.example',
  '/%255Cevil.example', 'https://evil.example', 'http://evil.example/', 'HTTPS://evil.example', 'javascript:alert(1)',
  'evil.example', '', ' /path', '/\t/evil.example', '/%09/evil.example', '/%0d%0aLocation:%20https://evil.example',
  '/\r\n/evil.example', '/ /evil.example', '/%20/evil.example', '/\u0000/evil', '/%00//evil', '//%09evil.example',
  '/.//evil.example', '/..//evil.example', 'data:text/html,x', '/%E0%A4%A', '/%%32%46%2Fevil.example', '/\u3000/evil.example'
]

t.test('open-redirect payloads fall back to /', async t => {
  for (const p of PAYLOADS) t.equal(safeReturnPath(p), '/', JSON.stringify(p))
  t.equal(safeReturnPath(undefined), '/')
  t.equal(safeReturnPath(['/a']), '/')
  t.equal(safeReturnPath('/' + 'a'.repeat(3000)), '/')
})

t.test('dot segments are resolved without leaving the origin', async t => {
  t.equal(safeReturnPath('/a/../b'), '/b')
  t.equal(safeReturnPath('/../../etc'), '/etc')
})

// With host routes under COOKIE_DOMAIN, sign-in may return to an absolute URL on a configured
// site: DOMAIN_SERVER's origin or a host route's, with DOMAIN_SERVER's scheme and port.
const SITES = new Set(['https://chat.example.com', 'https://admin.example.com'])

t.test('absolute URLs on a configured site are kept; relative paths on a route host become absolute there', async t => {
  for (const u of ['https://admin.example.com/', 'https://admin.example.com/users?page=2&sort=name', 'https://chat.example.com/c/new#x', 'https://admin.example.com']) {
    t.equal(safeReturnTarget(u, SITES), u === 'https://admin.example.com' ? 'https://admin.example.com/' : u, u)
  }
  t.equal(safeReturnTarget('HTTPS://ADMIN.EXAMPLE.COM/x', SITES), 'https://admin.example.com/x', 'scheme and host in any case')
  t.equal(safeReturnTarget('https://admin.example.com:443/x', SITES), 'https://admin.example.com/x', 'the default port named')
  t.equal(safeReturnTarget('/users?x=1', SITES), '/users?x=1')
  t.equal(safeReturnTarget('/users?x=1', SITES, 'https://admin.example.com'), 'https://admin.example.com/users?x=1')
  t.equal(safeReturnTarget('//evil.example', SITES, 'https://admin.example.com'), 'https://admin.example.com/', 'a refused path stays on the route host')
})

t.test('every open-redirect payload is still refused, and so is every other origin', async t => {
  for (const p of PAYLOADS) t.equal(safeReturnTarget(p, SITES), '/', JSON.stringify(p))
  const others = [
    'https://evil.example/', 'http://admin.example.com/', 'https://admin.example.com:8443/', 'https://admin.example.com./x',
    'https://admin.example.com.evil.example/', 'https://evil-admin.example.com/', 'https://xadmin.example.com/', 'https://example.com/',
    'https://admin.example.com@evil.example/', 'https://user:pw@admin.example.com/', 'https://admin.example.com%40evil.example/',
    'https://admin.example.com\\@evil.example/', 'https://admin.example.com\\evil.example', 'https:\\\\admin.example.com/',
    'https:/admin.example.com/', 'https:admin.example.com/', ' https://admin.example.com/', 'https://admin.example.com/\t', 'https://admin.example.com\n/',
    'https://admin.example.com//evil.example', 'https://admin.example.com/%2F%2Fevil.example', 'https://admin.example.com/%5Cevil.example',
    'https://admin.example.com/\\evil.example', 'https://admіn.example.com/', 'https://xn--admn-r0b.example.com/', 'https://[::1]/', 'https://127.0.0.1/',
    'javascript://admin.example.com/%0aalert(1)', 'ftp://admin.example.com/', 'https://evil.example#@admin.example.com/', 'https://evil.example?@admin.example.com/',
    'https%3A%2F%2Fadmin.example.com%2F', 'https://admin.example.com' + '/a'.repeat(1100)
  ]
  for (const p of others) t.equal(safeReturnTarget(p, SITES), '/', JSON.stringify(p))
  t.equal(safeReturnTarget(undefined, SITES), '/')
  t.equal(safeReturnTarget(['https://admin.example.com/'], SITES), '/')
  t.equal(safeReturnTarget('https://admin.example.com/', new Set(['https://chat.example.com'])), '/', 'a route host outside COOKIE_DOMAIN is no site')
})
