import { createHmac } from 'node:crypto'
import t from 'tap'
import { assertProblem, build, newUser, signUp, testHasher } from '../helper.js'

const SECRET = 'test-secret-that-is-at-least-32-characters-long'
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
/** Hand-made HS256 JWT, so tests can forge exactly the token they need. */
function forge (header: Record<string, unknown>, claims: Record<string, unknown>, secret = SECRET): string {
  const body = `${b64(header)}.${b64(claims)}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}
const decode = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString())

t.test('auth', async (t) => {
  const app = await build(t, { env: { JWT_ISSUER: 'gatehouse-test', JWT_AUDIENCE: 'tests', ACCESS_TOKEN_TTL: '600' } })

  t.test('login returns a Bearer access token with the promised claims', async (t) => {
    const fields = newUser()
    const created = (await app.inject({ method: 'POST', url: '/api/users', payload: fields })).json()
    const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ` ${fields.email.toUpperCase()} `, password: fields.password } })
    t.equal(res.statusCode, 200)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'])
    t.match(body.refresh_token, /^[A-Za-z0-9_-]{43}$/, '256 random bits, base64url')
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 600)
    const header = JSON.parse(Buffer.from(body.access_token.split('.')[0], 'base64url').toString())
    t.equal(header.alg, 'HS256')
    const claims = decode(body.access_token)
    t.match(claims, { sub: created.id, role: 'user', iss: 'gatehouse-test', aud: 'tests' })
    t.equal((claims.exp as number) - (claims.iat as number), 600, 'exp is iat + ACCESS_TOKEN_TTL seconds')
    t.ok(Math.abs((claims.iat as number) - Date.now() / 1000) < 60, 'iat is now')
  })

  t.test('unknown email and wrong password give the same 401 INVALID_CREDENTIALS', async (t) => {
    const ada = await signUp(app)
    const wrong = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: 'not-the-password' } })
    const unknown = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'nobody@example.com', password: 'not-the-password' } })
    const a = assertProblem(t, wrong, 401, 'INVALID_CREDENTIALS')
    const b = assertProblem(t, unknown, 401, 'INVALID_CREDENTIALS')
    t.same({ ...a, instance: '' }, { ...b, instance: '' }, 'identical bodies but for the request id')
    t.match(wrong.headers['www-authenticate'], /^Bearer/)
  })

  t.test('a malformed email at login is the same 401, not a hint', async (t) => {
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'not-an-email', password: 'whatever1' } }), 401, 'INVALID_CREDENTIALS')
  })

  t.test('login validates its body', async (t) => {
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@example.com' } }), 400, 'VALIDATION_FAILED')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@example.com', password: 'x'.repeat(129) } }), 400, 'VALIDATION_FAILED')
  })

  t.test('GET /api/auth/me returns the token\'s user', async (t) => {
    const ada = await signUp(app)
    const res = await app.inject({ url: '/api/auth/me', headers: ada.auth })
    t.equal(res.statusCode, 200)
    t.match(res.json(), { id: ada.id, email: ada.email, username: ada.username, role: 'user' })
    t.notMatch(res.body, /password/)
  })

  t.test('every kind of bad token is 401 UNAUTHORIZED with WWW-Authenticate', async (t) => {
    const ada = await signUp(app)
    const now = Math.floor(Date.now() / 1000)
    const good = { sub: ada.id, role: 'user', iat: now, exp: now + 600, iss: 'gatehouse-test', aud: 'tests' }
    const hs = { alg: 'HS256', typ: 'JWT' }
    const [h, p] = ada.token.split('.')
    const cases: Record<string, string> = {
      'no scheme': ada.token,
      'wrong scheme': `Basic ${Buffer.from('a:b').toString('base64')}`,
      'empty bearer': 'Bearer ',
      garbage: 'Bearer not.a.jwt',
      'alg none': `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(good)}.`,
      'tampered payload': `Bearer ${h ?? ''}.${b64({ ...good, role: 'admin' })}.${ada.token.split('.')[2] ?? ''}`,
      'tampered signature': `Bearer ${h ?? ''}.${p ?? ''}.${'A'.repeat(43)}`,
      'other secret': `Bearer ${forge(hs, good, 'another-secret-that-is-also-long-enough!')}`,
      expired: `Bearer ${forge(hs, { ...good, iat: now - 7200, exp: now - 3600 })}`,
      'issued in the future': `Bearer ${forge(hs, { ...good, iat: now + 3600, exp: now + 7200 })}`,
      'not yet valid': `Bearer ${forge(hs, { ...good, nbf: now + 3600 })}`,
      'wrong issuer': `Bearer ${forge(hs, { ...good, iss: 'someone-else' })}`,
      'wrong audience': `Bearer ${forge(hs, { ...good, aud: 'other-service' })}`,
      'no exp': `Bearer ${forge(hs, { ...good, exp: undefined })}`,
      'no role': `Bearer ${forge(hs, { ...good, role: undefined })}`,
      'HS384 instead of HS256': `Bearer ${(() => {
        const body = `${b64({ alg: 'HS384', typ: 'JWT' })}.${b64(good)}`
        return `${body}.${createHmac('sha384', SECRET).update(body).digest('base64url')}`
      })()}`
    }
    for (const [name, authorization] of Object.entries(cases)) {
      const res = await app.inject({ url: '/api/auth/me', headers: { authorization } })
      t.equal(res.statusCode, 401, name)
      t.equal(res.json().code, 'UNAUTHORIZED', name)
      t.match(res.headers['www-authenticate'], /^Bearer/, name)
    }
    const control = await app.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${forge(hs, good)}` } })
    t.equal(control.statusCode, 200, 'the same forge with the right secret and claims is accepted (the cases above fail for their reason)')
  })
})

t.test('the admin from ADMIN_EMAIL/ADMIN_PASSWORD is created once, however many times the app starts', async (t) => {
  const { freshDatabaseUrl, testConfig, testHasher, backend } = await import('../helper.js')
  const { buildApp } = await import('../../app.js')
  const url = await freshDatabaseUrl(t)
  const env = { ADMIN_EMAIL: 'Boss@Example.com', ADMIN_PASSWORD: 'boss-password-1', ...(url !== undefined && { DATABASE_URL: url }) }
  if (backend === 'pglite') {
    const { mkdtemp, rm } = await import('node:fs/promises')
    const dir = await mkdtemp('/tmp/gatehouse-test-')
    t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    Object.assign(env, { PGLITE_DATA_DIR: dir })
  }
  for (let start = 0; start < 2; start++) {
    const app = await buildApp(testConfig(env), { hasher: testHasher })
    await app.ready()
    const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'boss@example.com', password: 'boss-password-1' } })
    t.equal(login.statusCode, 200, `start ${start + 1}: the admin can log in`)
    const list = await app.inject({ url: '/api/users', headers: { authorization: `Bearer ${login.json().access_token as string}` } })
    const admins = (list.json().data as Array<{ role: string, email: string }>).filter((u) => u.role === 'admin')
    t.same(admins.map((u) => u.email), ['boss@example.com'], `start ${start + 1}: exactly one admin`)
    await app.close()
  }
})

t.test('a login storm past the hashing queue gets 503 with Retry-After, and the queued logins succeed', async (t) => {
  // Each password check takes 100 ms, so the logins below are all waiting at the same time.
  const slow = { hash: testHasher.hash, verify: async (hash: string, password: string) => { await new Promise((resolve) => setTimeout(resolve, 100)); return await testHasher.verify(hash, password) } }
  const app = await build(t, { hasher: slow, env: { PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '2' } })
  const user = await signUp(app)
  const answers = await Promise.all(Array.from({ length: 6 }, async () =>
    await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: user.email, password: user.password } })))
  const ok = answers.filter((res) => res.statusCode === 200)
  const busy = answers.filter((res) => res.statusCode === 503)
  t.equal(ok.length, 3, 'one hashing and two queued succeed')
  t.equal(busy.length, 3, 'the rest are refused')
  for (const res of busy) {
    assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
    t.ok(Number(res.headers['retry-after']) > 0, 'with Retry-After')
  }
})
