import t from 'tap'
import { Sealer } from '../../src/session/seal.js'

t.test('sealed tokens round-trip, hide their text, and survive secret rotation', async t => {
  const a = 'a'.repeat(32)
  const b = 'b'.repeat(32)
  const old = new Sealer([a])
  const sealed = old.sealJson({ refreshToken: 'rt-secret-value' }, 'tokens:s1')
  t.notMatch(sealed, /rt-secret-value/)
  t.same(old.openJson(sealed, 'tokens:s1'), { refreshToken: 'rt-secret-value' })
  const rotated = new Sealer([b, a])
  t.same(rotated.openJson(sealed, 'tokens:s1'), { refreshToken: 'rt-secret-value' }, 'old secret still opens')
  t.equal(new Sealer([b]).open(sealed, 'tokens:s1'), undefined, 'an unknown key opens nothing')
  const resealed = rotated.seal('x', 'p')
  t.equal(old.open(resealed, 'p'), undefined, 'the first secret seals')
  const parts = sealed.split('.')
  const body = Buffer.from(parts[3] as string, 'base64url')
  body[0] = (body[0] as number) ^ 1
  t.equal(old.open([parts[0], parts[1], parts[2], body.toString('base64url')].join('.'), 'tokens:s1'), undefined, 'tampering is detected')
  t.equal(old.open('garbage', 'p'), undefined)
})

t.test('a sealed value opens only for its own purpose and session', async t => {
  const sealer = new Sealer(['a'.repeat(32)])
  const sealed = sealer.seal('secret', 'tokens:session-a')
  t.equal(sealer.open(sealed, 'tokens:session-a'), 'secret')
  t.equal(sealer.open(sealed, 'tokens:session-b'), undefined, 'moved to another session: does not open')
  t.equal(sealer.open(sealed, 'end-session:session-a'), undefined, 'used for another purpose: does not open')
  t.equal(sealer.openJson(sealer.seal('not json', 'p'), 'p'), undefined, 'non-JSON plaintext is no value')
})
