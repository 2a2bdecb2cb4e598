import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../../app.js'
import { ConfigError, loadConfig } from '../../config.js'
import { assertProblem, build, freshDatabaseUrl, newUser, testConfig, testHasher } from '../helper.js'
import type { FastifyInstance } from 'fastify'

const pemOf = (key: KeyObject, type: 'pkcs8' | 'spki'): string => key.export({ format: 'pem', type }).toString()
const ed = () => generateKeyPairSync('ed25519')
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' })
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const parts = (token: string) => {
  const [h, p, s] = token.split('.')
  return { header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString()), payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString()), signing: `${h ?? ''}.${p ?? ''}`, signature: Buffer.from(s ?? '', 'base64url') }
}

async function signUpAndLogin (app: FastifyInstance) {
  const fields = newUser()
  await app.inject({ method: 'POST', url: '/api/users', payload: fields })
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: fields.email, password: fields.password } })
  return res.json<{ access_token: string }>().access_token
}

t.test('EdDSA: tokens carry a kid, other services verify them from the JWKS alone', async (t) => {
  const { privateKey } = ed()
  const app = await build(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pemOf(privateKey, 'pkcs8').replaceAll('\n', '\\n') } })
  const token = await signUpAndLogin(app)
  const { header, signing, signature, payload } = parts(token)
  t.equal(header.alg, 'EdDSA')

  const jwks = await app.inject({ url: '/.well-known/jwks.json' })
  t.equal(jwks.statusCode, 200)
  t.match(jwks.headers['cache-control'], /max-age=/)
  const keys = jwks.json().keys as Array<Record<string, string>>
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'OKP', crv: 'Ed25519', use: 'sig', alg: 'EdDSA', kid: header.kid })
  t.notOk('d' in (keys[0] ?? {}), 'no private part is published')

  // What a relying service does: pick the key by kid, verify the signature with it.
  const published = createPublicKey({ key: keys[0] as never, format: 'jwk' })
  t.ok(cryptoVerify(null, Buffer.from(signing), published, signature), 'the signature verifies with the published key')
  t.equal((await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 200)

  t.test('attacks on the key choice are refused', async (t) => {
    const publicPem = pemOf(createPublicKey(privateKey), 'spki')
    const hsBody = `${b64({ alg: 'HS256', typ: 'JWT', kid: header.kid })}.${b64(payload)}`
    const unknownBody = `${b64({ alg: 'EdDSA', typ: 'JWT', kid: 'not-a-key-of-ours' })}.${b64(payload)}`
    const noKidBody = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64(payload)}`
    const cases: Record<string, string> = {
      'HS256 keyed with our public key (algorithm confusion)': `${hsBody}.${createHmac('sha256', publicPem).update(hsBody).digest('base64url')}`,
      'unknown kid': `${unknownBody}.${cryptoSign(null, Buffer.from(unknownBody), privateKey).toString('base64url')}`,
      'no kid': `${noKidBody}.${cryptoSign(null, Buffer.from(noKidBody), privateKey).toString('base64url')}`,
      'alg none': `${b64({ alg: 'none', kid: header.kid })}.${b64(payload)}.`,
      'signed by another key with our kid': `${signing}.${cryptoSign(null, Buffer.from(signing), ed().privateKey).toString('base64url')}`
    }
    for (const [name, forged] of Object.entries(cases)) {
      assertProblem(t, await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${forged}` } }), 401, 'UNAUTHORIZED')
      t.pass(name)
    }
  })
})

t.test('ES256 signs and verifies too', async (t) => {
  const app = await build(t, { env: { JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pemOf(p256().privateKey, 'pkcs8') } })
  const token = await signUpAndLogin(app)
  t.equal(parts(token).header.alg, 'ES256')
  t.equal((await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${token}` } })).statusCode, 200)
  t.match((await app.inject({ url: '/.well-known/jwks.json' })).json().keys, [{ kty: 'EC', crv: 'P-256', alg: 'ES256' }])
})

t.test('a public key listed twice (or the signing key listed again) is published once', async (t) => {
  const { privateKey } = ed()
  const own = pemOf(createPublicKey(privateKey), 'spki')
  const app = await build(t, { env: { JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pemOf(privateKey, 'pkcs8'), JWT_PUBLIC_KEYS: `${own}\n${own}` } })
  t.equal((await app.inject({ url: '/.well-known/jwks.json' })).json().keys.length, 1)
})

t.test('HS256 publishes an empty key set', async (t) => {
  const app = await build(t)
  t.same((await app.inject({ url: '/.well-known/jwks.json' })).json(), { keys: [] })
})

t.test('key rotation: a new signing key, the old one still accepted until its tokens expire', async (t) => {
  const url = await freshDatabaseUrl(t)
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-rotation-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const store: Record<string, string> = url !== undefined ? { DATABASE_URL: url } : { PGLITE_DATA_DIR: dir }
  const oldKey = ed().privateKey
  const newKey = ed().privateKey

  const before = await buildApp(testConfig({ ...store, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pemOf(oldKey, 'pkcs8') }), { hasher: testHasher })
  const oldToken = await signUpAndLogin(before)
  await before.close()

  const after = await buildApp(testConfig({
    ...store,
    JWT_ALGORITHM: 'EdDSA',
    JWT_PRIVATE_KEY: pemOf(newKey, 'pkcs8'),
    JWT_PUBLIC_KEYS: pemOf(createPublicKey(oldKey), 'spki')
  }), { hasher: testHasher })
  t.teardown(async () => { await after.close() })
  t.equal((await after.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${oldToken}` } })).statusCode, 200, 'old tokens still verify')
  const newToken = await signUpAndLogin(after)
  t.not(parts(newToken).header.kid, parts(oldToken).header.kid, 'new tokens carry the new kid')
  const kids = ((await after.inject({ url: '/.well-known/jwks.json' })).json().keys as Array<{ kid: string }>).map((k) => k.kid)
  t.same(kids, [parts(newToken).header.kid, parts(oldToken).header.kid], 'the JWKS lists the signing key first, then the old one')
})

t.test('bad key configuration stops start-up with a clear line', async (t) => {
  const problems = (env: Record<string, string>): string[] => {
    try {
      loadConfig({ JWT_ALGORITHM: 'EdDSA', ...env })
    } catch (err) {
      if (err instanceof ConfigError) return err.problems
    }
    return []
  }
  t.match(problems({}), [/^JWT_PRIVATE_KEY: required when JWT_ALGORITHM=EdDSA/])
  t.match(problems({ JWT_PRIVATE_KEY: pemOf(p256().privateKey, 'pkcs8') }), [/not a key for EdDSA \(Ed25519\)/])
  t.match(problems({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pemOf(ed().privateKey, 'pkcs8') }), [/not a key for ES256 \(P-256\)/])
  t.match(problems({ JWT_PRIVATE_KEY: pemOf(ed().privateKey, 'pkcs8'), JWT_PUBLIC_KEYS: pemOf(p256().publicKey, 'spki') }), [/JWT_PUBLIC_KEYS entry is not a key for EdDSA/])
  t.match(problems({ JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----' }), [/^JWT_PRIVATE_KEY, JWT_PUBLIC_KEYS: /])
  t.notMatch(problems({ JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nsecretstuff\n-----END PRIVATE KEY-----' }).join(), /secretstuff/, 'the key is never echoed')
  const same = pemOf(ed().privateKey, 'pkcs8')
  t.same(problems({ JWT_PRIVATE_KEY: same, NODE_ENV: 'production' }), [], 'production needs no JWT_SECRET with a private key')
})
