import t from 'tap'
import { sessionKeys } from '../../src/session/keys.js'

const sealerFor = (secrets: string[]) => sessionKeys(secrets).sealer

t.test('sealed tokens round-trip, hide their text, and survive secret rotation', async t => {
  const a = 'a'.repeat(32)
  const b = 'b'.repeat(32)
  const old = sealerFor([a])
  const sealed = old.sealJson({ refreshToken: 'rt-secret-value' }, 'tokens:s1')
  t.notMatch(sealed, /rt-secret-value/)
  t.same(old.openJson(sealed, 'tokens:s1'), { refreshToken: 'rt-secret-value' })
  const rotated = sealerFor([b, a])
  t.same(rotated.openJson(sealed, 'tokens:s1'), { refreshToken: 'rt-secret-value' }, 'old secret still opens')
  t.equal(sealerFor([b]).open(sealed, 'tokens:s1'), undefined, 'an unknown key opens nothing')
  const resealed = rotated.seal('x', 'p')
  t.equal(old.open(resealed, 'p'), undefined, 'the first secret seals')
  const body = Buffer.from(sealed, 'base64url')
  body[25] = (body[25] as number) ^ 1
  t.equal(old.open(body.toString('base64url'), 'tokens:s1'), undefined, 'tampering is detected')
  t.equal(old.open('garbage', 'p'), undefined)
  t.equal(old.openBytes(Buffer.alloc(10), 'p'), undefined, 'too short for a sealed value')
})

t.test('a sealed value opens only for its own purpose and session', async t => {
  const sealer = sealerFor(['a'.repeat(32)])
  const sealed = sealer.seal('secret', 'tokens:session-a')
  t.equal(sealer.open(sealed, 'tokens:session-a'), 'secret')
  t.equal(sealer.open(sealed, 'tokens:session-b'), undefined, 'moved to another session: does not open')
  t.equal(sealer.open(sealed, 'end-session:session-a'), undefined, 'used for another purpose: does not open')
  t.equal(sealer.openJson(sealer.seal('not json', 'p'), 'p'), undefined, 'non-JSON plaintext is no value')
})

t.test('bytes for the store, text for cookies: the same sealed value', async t => {
  const sealer = sealerFor(['a'.repeat(32)])
  const bytes = sealer.sealBytes('{"r":"rt"}', 'tokens:s')
  t.ok(Buffer.isBuffer(bytes))
  t.equal(bytes.length, 1 + 6 + 12 + 10 + 16, 'version, key id, iv, ciphertext, tag: nothing else')
  t.equal(sealer.open(bytes.toString('base64url'), 'tokens:s'), '{"r":"rt"}')
  t.same(sealer.openJson(bytes, 'tokens:s'), { r: 'rt' })
  t.equal(sealer.openBytes(bytes, 'tokens:other'), undefined)
})

t.test('the cookie key and the sealing key come from one secret but differ', async t => {
  const keys = sessionKeys(['a'.repeat(32)])
  t.equal(keys.cookieSecrets.length, 1)
  t.notOk(keys.cookieSecrets[0]?.includes('a'.repeat(32)), 'the secret itself is not used as a key')
  t.throws(() => sessionKeys([]))
})

t.test('values sealed in the earlier text form still open (the shared identity key, live sessions)', async t => {
  const sealer = sealerFor(['a'.repeat(32)])
  const bytes = sealer.sealBytes('kept', 'identity-signing-key')
  const legacy = ['v2', bytes.subarray(1, 7).toString('base64url'), bytes.subarray(7, 19).toString('base64url'), bytes.subarray(19).toString('base64url')].join('.')
  t.equal(sealer.open(legacy, 'identity-signing-key'), 'kept')
  t.equal(sealer.open(legacy, 'other'), undefined)
})
