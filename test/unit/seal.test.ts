import t from 'tap'
import { Sealer } from '../../src/session/seal.js'

t.test('sealed tokens round-trip, hide their text, and survive secret rotation', async t => {
  const a = 'a'.repeat(32)
  const b = 'b'.repeat(32)
  const old = new Sealer([a])
  const sealed = old.sealJson({ refreshToken: 'rt-secret-value' })
  t.notMatch(sealed, /rt-secret-value/)
  t.same(old.openJson(sealed), { refreshToken: 'rt-secret-value' })
  const rotated = new Sealer([b, a])
  t.same(rotated.openJson(sealed), { refreshToken: 'rt-secret-value' }, 'old secret still opens')
  t.equal(new Sealer([b]).open(sealed), undefined, 'an unknown key opens nothing')
  const resealed = rotated.seal('x')
  t.equal(old.open(resealed), undefined, 'the first secret seals')
  const parts = sealed.split('.')
  const body = Buffer.from(parts[3] as string, 'base64url')
  body[0] = (body[0] as number) ^ 1
  t.equal(old.open([parts[0], parts[1], parts[2], body.toString('base64url')].join('.')), undefined, 'tampering is detected')
  t.equal(old.open('garbage'), undefined)
})
