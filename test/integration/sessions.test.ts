import t from 'tap'
import { ADMIN, ADMIN_ENV, assertProblem, build, loginToken, newUser, signUp } from '../helper.js'
import type { FastifyInstance } from 'fastify'

interface Tokens { access_token: string, refresh_token: string }

async function login (app: FastifyInstance, email: string, password: string, userAgent = 'test-agent'): Promise<Tokens> {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'user-agent': userAgent }, payload: { email, password } })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.body}`)
  return res.json()
}
const refresh = async (app: FastifyInstance, token: string) =>
  await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: token } })
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.test('sessions without a grace window', async (t) => {
  const lines: string[] = []
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '0', LOG_LEVEL: 'warn', ...ADMIN_ENV }, logStream: { write: (l) => { lines.push(l) } } })

  t.test('refresh rotates: new tokens that work, and the old refresh token is spent', async (t) => {
    const ada = await signUp(app)
    const first = await login(app, ada.email, ada.password)
    const res = await refresh(app, first.refresh_token)
    t.equal(res.statusCode, 200)
    const second = res.json<Tokens>()
    t.not(second.refresh_token, first.refresh_token)
    t.equal((await app.inject({ url: '/api/auth/me', headers: bearer(second.access_token) })).statusCode, 200)
    t.equal((await refresh(app, second.refresh_token)).statusCode, 200, 'the new refresh token works once')
  })

  t.test('reusing a rotated refresh token revokes the whole family and is logged and counted', async (t) => {
    const ada = await signUp(app)
    const first = await login(app, ada.email, ada.password)
    const second = (await refresh(app, first.refresh_token)).json<Tokens>()
    lines.length = 0
    assertProblem(t, await refresh(app, first.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    assertProblem(t, await refresh(app, second.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    const event = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'refresh_token_reuse')
    t.match(event, { level: 40, userId: ada.id, ip: '127.0.0.1', userAgent: 'lightMyRequest' })
    t.notOk(lines.join('').includes(first.refresh_token), 'the token itself is not logged')
    const metrics = await app.inject({ url: '/metrics' })
    t.match(metrics.body, /gatehouse_refresh_token_reuse_total [1-9]/)
  })

  t.test('two concurrent refreshes of one token: one wins, and the family is then fully revoked', async (t) => {
    const ada = await signUp(app)
    const first = await login(app, ada.email, ada.password)
    const results = await Promise.all([refresh(app, first.refresh_token), refresh(app, first.refresh_token)])
    // Usually [200, 401]; [401, 401] when the reuse revokes the family before the winner's new
    // token is stored (the winner is then refused too, never handed a token of a revoked family).
    t.ok([[200, 401], [401, 401]].some((s) => JSON.stringify(s) === JSON.stringify(results.map((r) => r.statusCode).sort())))
    const winner = results.find((r) => r.statusCode === 200)?.json<Tokens>()
    if (winner !== undefined) assertProblem(t, await refresh(app, winner.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
  })

  t.test('a token that was never issued is 401', async (t) => {
    assertProblem(t, await refresh(app, 'x'.repeat(43)), 401, 'INVALID_REFRESH_TOKEN')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: {} }), 400, 'VALIDATION_FAILED')
  })

  t.test('logout ends this session only, and is idempotent', async (t) => {
    const ada = await signUp(app)
    const one = await login(app, ada.email, ada.password)
    const two = await login(app, ada.email, ada.password)
    const out = await app.inject({ method: 'POST', url: '/api/auth/logout', payload: { refresh_token: one.refresh_token } })
    t.equal(out.statusCode, 204)
    assertProblem(t, await refresh(app, one.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    t.equal((await refresh(app, two.refresh_token)).statusCode, 200, 'the other session lives on')
    t.equal((await app.inject({ method: 'POST', url: '/api/auth/logout', payload: { refresh_token: one.refresh_token } })).statusCode, 204)
    t.equal((await app.inject({ method: 'POST', url: '/api/auth/logout', payload: { refresh_token: 'never-issued' } })).statusCode, 204)
  })

  t.test('logout-all ends every session of the user', async (t) => {
    const ada = await signUp(app)
    const one = await login(app, ada.email, ada.password)
    const two = await login(app, ada.email, ada.password)
    t.equal((await app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(one.access_token) })).statusCode, 204)
    for (const s of [one, two]) assertProblem(t, await refresh(app, s.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/logout-all' }), 401, 'UNAUTHORIZED')
  })

  t.test('a user lists their sessions and ends one; another user\'s session is not theirs to end', async (t) => {
    const ada = await signUp(app)
    const bob = await signUp(app)
    const laptop = await login(app, ada.email, ada.password, 'laptop')
    const phone = await login(app, ada.email, ada.password, 'phone')
    const bobs = await login(app, bob.email, bob.password)
    const list = await app.inject({ url: '/api/auth/sessions', headers: bearer(laptop.access_token) })
    t.equal(list.statusCode, 200)
    const sessions = list.json().data as Array<{ id: string, user_agent: string, ip: string, created_at: string, expires_at: string }>
    // signUp() itself signed in once (as lightMyRequest, inject's user agent).
    t.same(sessions.map((s) => s.user_agent).sort(), ['laptop', 'lightMyRequest', 'phone'])
    t.ok(sessions.every((s) => s.ip === '127.0.0.1' && s.expires_at > s.created_at))
    t.notMatch(list.body, /token|hash/, 'no token material')

    const phoneSession = sessions.find((s) => s.user_agent === 'phone')
    t.equal((await app.inject({ method: 'DELETE', url: `/api/auth/sessions/${String(phoneSession?.id)}`, headers: bearer(laptop.access_token) })).statusCode, 204)
    assertProblem(t, await refresh(app, phone.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
    const after = (await app.inject({ url: '/api/auth/sessions', headers: bearer(laptop.access_token) })).json().data as unknown[]
    t.equal(after.length, 2)

    const bobsSession = (await app.inject({ url: '/api/auth/sessions', headers: bearer(bobs.access_token) })).json().data[0].id as string
    assertProblem(t, await app.inject({ method: 'DELETE', url: `/api/auth/sessions/${bobsSession}`, headers: bearer(laptop.access_token) }), 404, 'NOT_FOUND')
    t.equal((await refresh(app, bobs.refresh_token)).statusCode, 200, 'bob\'s session survived')
  })

  t.test('changing the password ends every session', async (t) => {
    const ada = await signUp(app)
    const s = await login(app, ada.email, ada.password)
    const res = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: bearer(s.access_token), payload: { password: 'a-brand-new-password', current_password: ada.password } })
    t.equal(res.statusCode, 200)
    assertProblem(t, await refresh(app, s.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
  })

  t.test('deleting the user ends every session', async (t) => {
    const ada = await signUp(app)
    const s = await login(app, ada.email, ada.password)
    t.equal((await app.inject({ method: 'DELETE', url: `/api/users/${ada.id}`, headers: bearer(s.access_token) })).statusCode, 204)
    assertProblem(t, await refresh(app, s.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
  })

  t.test('a new role reaches the access token at the next refresh', async (t) => {
    const ada = await signUp(app)
    const s = await login(app, ada.email, ada.password)
    const admin = bearer(await loginToken(app, ADMIN.email, ADMIN.password))
    await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: admin, payload: { role: 'admin' } })
    const next = (await refresh(app, s.refresh_token)).json<Tokens>()
    const claims = JSON.parse(Buffer.from(next.access_token.split('.')[1] ?? '', 'base64url').toString()) as { role: string }
    t.equal(claims.role, 'admin')
  })
})

t.test('sessions with a grace window', async (t) => {
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '30' } })

  t.test('a second refresh of one token within the window gets its own tokens; nothing is revoked', async (t) => {
    const fields = newUser()
    await app.inject({ method: 'POST', url: '/api/users', payload: fields })
    const first = await login(app, fields.email, fields.password)
    const results = await Promise.all([refresh(app, first.refresh_token), refresh(app, first.refresh_token)])
    t.same(results.map((r) => r.statusCode), [200, 200])
    const [a, b] = results.map((r) => r.json<Tokens>())
    t.not(a?.refresh_token, b?.refresh_token)
    for (const next of [a, b]) t.equal((await refresh(app, String(next?.refresh_token))).statusCode, 200, 'both branches stay usable')
  })
})
