import t from 'tap'
import { HashingError } from '../../services/errors.js'
import { createArgon2Hasher, OWASP_ARGON2ID } from '../../services/password-hasher.js'
import { an } from '../fakes.js'

// One hasher with the production parameters; the cheap one keeps the other cases quick.
const owasp = createArgon2Hasher()
const cheap = createArgon2Hasher({ memoryCost: 1024, timeCost: 1, parallelism: 1 })

t.test('the default is argon2id with the OWASP parameters, as a PHC string', async (t) => {
  t.same(OWASP_ARGON2ID, { memoryCost: 19_456, timeCost: 2, parallelism: 1 })
  const hash = await owasp.hash('correct horse battery staple')
  t.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/)
  t.equal(await owasp.verify(hash, 'correct horse battery staple'), true)
})

t.test('custom parameters are the ones used', async (t) => {
  t.match(await cheap.hash('pw'), /^\$argon2id\$v=19\$m=1024,t=1,p=1\$/)
})

t.test('the same password hashes differently each time, with a fresh salt', async (t) => {
  const [a, b] = await Promise.all([cheap.hash('same password'), cheap.hash('same password')])
  t.not(a, b)
  t.equal(await cheap.verify(a, 'same password'), true)
  t.equal(await cheap.verify(b, 'same password'), true)
})

t.test('verify is true for the password and false for any other', async (t) => {
  const hash = await cheap.hash('s3cret-password')
  t.equal(await cheap.verify(hash, 's3cret-password'), true)
  t.equal(await cheap.verify(hash, 's3cret-passwore'), false)
  t.equal(await cheap.verify(hash, 'S3CRET-PASSWORD'), false)
  t.equal(await cheap.verify(hash, ''), false)
})

t.test('verify checks against the parameters stored in the hash, not its own', async (t) => {
  const hash = await cheap.hash('moved-between-settings')
  t.equal(await owasp.verify(hash, 'moved-between-settings'), true)
})

t.test('verify of a malformed hash is false, not an error', async (t) => {
  t.equal(await cheap.verify('not a hash', 'anything'), false)
  t.equal(await cheap.verify('', 'anything'), false)
  t.equal(await cheap.verify('$argon2id$v=19$m=1024,t=1,p=1$truncated', 'anything'), false)
})

t.test('a hash that fails becomes a HashingError carrying the cause', async (t) => {
  const broken = createArgon2Hasher({ memoryCost: 0, timeCost: 1, parallelism: 1 })
  const err = await broken.hash('pw').then(() => undefined, (e: unknown) => e)
  t.type(err, HashingError)
  t.match(err, { status: 500, code: 'INTERNAL_ERROR', message: 'Password hashing failed' })
  t.match((err as HashingError).cause, { message: /memory cost/i }, 'the library\'s error is kept as the cause')
})

t.test('invalid time cost or parallelism also become HashingError', async (t) => {
  await t.rejects(createArgon2Hasher({ memoryCost: 1024, timeCost: 0, parallelism: 1 }).hash('pw'), an(HashingError))
  await t.rejects(createArgon2Hasher({ memoryCost: 1024, timeCost: 1, parallelism: 0 }).hash('pw'), an(HashingError))
})
