import t from 'tap'
import { ADMIN, ADMIN_ENV, assertProblem, build, loginToken, newUser, signUp } from '../helper.js'

// Probes from the OWASP API Security Top 10 (2023) that apply to a users service.

t.test('OWASP API Top 10 probes', async (t) => {
  const app = await build(t, { env: { ...ADMIN_ENV, BODY_LIMIT: '16384' } })
  const ada = await signUp(app)
  const bob = await signUp(app)
  const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, { security?: unknown[] }>> }
  const secured = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops)
    .filter(([, op]) => (op.security?.length ?? 0) > 0)
    .map(([method, op]) => ({ method: method.toUpperCase() as 'GET', url: path.replace('{id}', bob.id), op })))

  t.test('API1 broken object level authorization: Ada cannot read, change or delete Bob', async (t) => {
    assertProblem(t, await app.inject({ url: `/api/users/${bob.id}`, headers: ada.auth }), 403, 'FORBIDDEN')
    assertProblem(t, await app.inject({ method: 'PATCH', url: `/api/users/${bob.id}`, headers: ada.auth, payload: { username: 'pwned' } }), 403, 'FORBIDDEN')
    assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/users/${bob.id}`, headers: ada.auth }), 403, 'FORBIDDEN')
    const bobs = (await app.inject({ url: '/api/auth/sessions', headers: bob.auth })).json().data[0].id as string
    assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/auth/sessions/${bobs}`, headers: ada.auth }), 404, 'NOT_FOUND')
    t.equal((await app.inject({ url: `/api/users/${bob.id}`, headers: bob.auth })).json().username, bob.username, 'Bob is untouched')
  })

  t.test('API2 broken authentication: every secured operation refuses a missing or forged token', async (t) => {
    t.ok(secured.length >= 10, `${secured.length} secured operations`)
    for (const { method, url } of secured) {
      for (const authorization of [undefined, 'Bearer forged.token.here', `Bearer ${ada.token.slice(0, -2)}xx`]) {
        const payload = ['GET', 'DELETE'].includes(method) ? undefined : {}
        const res = await app.inject({ method, url, headers: authorization === undefined ? {} : { authorization }, payload })
        t.equal(res.statusCode, 401, `${method} ${url} with ${authorization === undefined ? 'no token' : 'a bad token'}`)
      }
    }
  })

  t.test('API3 broken object property level authorization: no mass assignment, no hash in any answer', async (t) => {
    for (const extra of [{ role: 'admin' }, { id: ada.id }, { created_at: '2000-01-01T00:00:00Z' }, { password_hash: '$argon2id$...' }]) {
      assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), ...extra } }), 400, 'VALIDATION_FAILED')
      if (!('role' in extra)) assertProblem(t, await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: ada.auth, payload: extra }), 400, 'VALIDATION_FAILED')
    }
    assertProblem(t, await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: ada.auth, payload: { role: 'admin' } }), 403, 'FORBIDDEN')
    t.equal((await app.inject({ url: '/api/auth/me', headers: ada.auth })).json().role, 'user')
    const admin = { authorization: `Bearer ${await loginToken(app, ADMIN.email, ADMIN.password)}` }
    for (const res of [
      await app.inject({ url: '/api/users?limit=100', headers: admin }),
      await app.inject({ url: `/api/users/${ada.id}`, headers: admin }),
      await app.inject({ url: '/api/auth/me', headers: ada.auth })
    ]) t.notMatch(res.body, /password|argon2/, 'no password material')
  })

  t.test('API4 unrestricted resource consumption: oversized input is refused before any work', async (t) => {
    const admin = { authorization: `Bearer ${await loginToken(app, ADMIN.email, ADMIN.password)}` }
    assertProblem(t, await app.inject({ url: '/api/users?limit=1000000', headers: admin }), 400, 'VALIDATION_FAILED')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), username: 'u'.repeat(20_000) } }), 413, 'PAYLOAD_TOO_LARGE')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), username: 'u'.repeat(1000) } }), 400, 'VALIDATION_FAILED')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: 'p'.repeat(129) } }), 400, 'VALIDATION_FAILED')
    assertProblem(t, await app.inject({ url: `/api/users?cursor=${'c'.repeat(600)}`, headers: admin }), 400, 'VALIDATION_FAILED')
  })

  t.test('API5 broken function level authorization: a user cannot use admin functions', async (t) => {
    for (const { method, url, payload } of [
      { method: 'GET' as const, url: '/api/users', payload: undefined },
      { method: 'POST' as const, url: '/api/users/lookup', payload: { ids: [bob.id] } },
      { method: 'GET' as const, url: '/api/users/export', payload: undefined },
      { method: 'PATCH' as const, url: `/api/users/${ada.id}`, payload: { role: 'admin' } }
    ]) {
      assertProblem(t, await app.inject({ method, url, headers: ada.auth, payload }), 403, 'FORBIDDEN')
    }
  })

  t.test('API8 security misconfiguration: hardened headers, no stack traces, no server fingerprint', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', headers: { 'content-type': 'application/json' }, payload: '{"broken"' })
    assertProblem(t, res, 400, 'MALFORMED_JSON')
    t.notMatch(res.body, /at .+:\d+:\d+|node_modules|SyntaxError/, 'no stack or parser internals')
    t.equal(res.headers['x-powered-by'], undefined)
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.match(res.headers['strict-transport-security'], /max-age/)
    t.match(res.headers['content-security-policy'], /default-src 'self'/)
  })
})
