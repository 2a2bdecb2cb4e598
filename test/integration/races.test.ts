/**
 * Races (issue 8): many requests at once against the same email, username, refresh token or user.
 * The database decides every race; the tests check each answer and then the rows themselves.
 * Runs on both backends through inject (PGlite serialises statements, PostgreSQL really interleaves).
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { sql } from 'kysely'
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { ADMIN, ADMIN_ENV, assertProblem, build, loginToken, newUser, signUp } from '../helper.js'

interface Tokens { access_token: string, refresh_token: string }

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const refresh = async (app: FastifyInstance, token: string) =>
  await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: token } })
async function login (app: FastifyInstance, email: string, password: string): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email, password } })
}
const statusCounts = (results: LightMyRequestResponse[]): Record<number, number> => {
  const counts: Record<number, number> = {}
  for (const r of results) counts[r.statusCode] = (counts[r.statusCode] ?? 0) + 1
  return counts
}
const codes = (results: LightMyRequestResponse[]): string[] =>
  [...new Set(results.filter((r) => r.statusCode >= 400).map((r) => String(r.json<{ code: string }>().code)))].sort()

/** The refresh_tokens rows of one session family, straight from the database. */
async function family (app: FastifyInstance, familyId: string) {
  const { rows } = await sql<{ id: string, used_at: Date | null, revoked_at: Date | null }>`
    select id, used_at, revoked_at from refresh_tokens where family_id = ${familyId}`.execute(app.database.db)
  return rows
}
async function familyOf (app: FastifyInstance, accessToken: string): Promise<string> {
  const sessions = (await app.inject({ url: '/api/auth/sessions', headers: bearer(accessToken) })).json<{ data: Array<{ id: string }> }>().data
  return String(sessions[0]?.id)
}

const N = 20

t.test('signup races', async (t) => {
  const app = await build(t)

  t.test('100 concurrent signups with one email: one 201, 99 × 409 EMAIL_ALREADY_EXISTS, one row', async (t) => {
    const email = newUser().email
    // Letter case and spacing vary: normalisation must not open a gap for duplicates.
    const variants = [email, email.toUpperCase(), `  ${email} `]
    const results = await Promise.all(Array.from({ length: 100 }, async (_, i) =>
      await app.inject({ method: 'POST', url: '/api/users', payload: newUser({ email: variants[i % 3] ?? email }) })))
    t.same(statusCounts(results), { 201: 1, 409: 99 })
    t.same(codes(results), ['EMAIL_ALREADY_EXISTS'])
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from users where email = ${email}`.execute(app.database.db)
    t.equal(rows[0]?.n, 1, 'exactly one row holds the email')
  })

  t.test('100 concurrent signups with one username (any case), distinct emails: one 201, 99 × 409 USERNAME_ALREADY_EXISTS', async (t) => {
    const username = `race_${process.pid}_${Date.now()}`
    const results = await Promise.all(Array.from({ length: 100 }, async (_, i) =>
      await app.inject({ method: 'POST', url: '/api/users', payload: newUser({ username: i % 2 === 0 ? username : username.toUpperCase() }) })))
    t.same(statusCounts(results), { 201: 1, 409: 99 })
    t.same(codes(results), ['USERNAME_ALREADY_EXISTS'])
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from users where lower(username) = ${username}`.execute(app.database.db)
    t.equal(rows[0]?.n, 1, 'exactly one row holds the username')
  })
})

t.test('concurrent PATCH of one username by different users: one 200, the rest 409, the winner\'s value only', async (t) => {
  const app = await build(t)
  const users = await Promise.all(Array.from({ length: 10 }, async () => await signUp(app)))
  const wanted = `taken_${process.pid}_${Date.now()}`
  const results = await Promise.all(users.map(async (u) =>
    await app.inject({ method: 'PATCH', url: `/api/users/${u.id}`, headers: u.auth, payload: { username: wanted } })))
  t.same(statusCounts(results), { 200: 1, 409: 9 })
  t.same(codes(results), ['USERNAME_ALREADY_EXISTS'])
  const winner = users[results.findIndex((r) => r.statusCode === 200)]
  const { rows } = await sql<{ id: string, username: string }>`select id, username from users where id in (${sql.join(users.map((u) => u.id))})`.execute(app.database.db)
  t.same(rows.filter((r) => r.username === wanted).map((r) => r.id), [winner?.id], 'only the winner holds the username')
  for (const u of users.filter((u) => u !== winner)) {
    t.equal(rows.find((r) => r.id === u.id)?.username, u.username, 'a loser kept its own username')
  }
})

t.test(`${N} concurrent refreshes of one token with a grace window: all succeed with sibling tokens, nothing revoked`, async (t) => {
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '30' } })
  const ada = await signUp(app)
  const first = (await login(app, ada.email, ada.password)).json<Tokens>()
  const familyId = await familyOf(app, first.access_token)
  const results = await Promise.all(Array.from({ length: N }, async () => await refresh(app, first.refresh_token)))
  t.same(statusCounts(results), { 200: N })
  const siblings = results.map((r) => r.json<Tokens>().refresh_token)
  t.equal(new Set(siblings).size, N, 'every refresh got its own token')
  const rows = await family(app, familyId)
  t.equal(rows.length, N + 1, 'the family holds the original and every sibling')
  t.equal(rows.filter((r) => r.revoked_at !== null).length, 0, 'nothing is revoked')
  const next = await Promise.all(siblings.map(async (s) => await refresh(app, s)))
  t.same(statusCounts(next), { 200: N }, 'every sibling is usable once')
})

t.test(`${N} concurrent refreshes of one token without a grace window: one wins, then the whole family is revoked`, async (t) => {
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '0' } })
  const ada = await signUp(app)
  for (let round = 0; round < 3; round++) {
    const first = (await login(app, ada.email, ada.password)).json<Tokens>()
    const familyId = await familyOf(app, first.access_token)
    const results = await Promise.all(Array.from({ length: N }, async () => await refresh(app, first.refresh_token)))
    const counts = statusCounts(results)
    t.ok((counts[200] ?? 0) <= 1 && (counts[500] ?? 0) === 0 && (counts[200] ?? 0) + (counts[401] ?? 0) === N,
      `round ${round}: at most one 200, the rest 401 (got ${JSON.stringify(counts)})`)
    t.same(codes(results), ['INVALID_REFRESH_TOKEN'])
    const rows = await family(app, familyId)
    t.same(rows.filter((r) => r.revoked_at === null).map((r) => r.id), [], `round ${round}: no row of the family is left unrevoked (${rows.length} rows)`)
    const winner = results.find((r) => r.statusCode === 200)?.json<Tokens>()
    if (winner !== undefined) assertProblem(t, await refresh(app, winner.refresh_token), 401, 'INVALID_REFRESH_TOKEN')
  }
})

t.test('a user deleted while logins are in flight: every login 200 or 401, never 5xx; no session outlives the user', async (t) => {
  // Failed logins count towards the account's limit; here they are expected, not an attack.
  const app = await build(t, { env: { ...ADMIN_ENV, LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000000' } })
  const admin = bearer(await loginToken(app, ADMIN.email, ADMIN.password))
  for (const by of ['admin', 'self'] as const) {
    const ada = await signUp(app)
    const before = (await login(app, ada.email, ada.password)).json<Tokens>()
    let done = 0
    let quarter!: () => void
    const someDone = new Promise<void>((resolve) => { quarter = resolve })
    const logins = Array.from({ length: N }, async () => {
      const res = await login(app, ada.email, ada.password)
      if (++done === N / 4) quarter()
      return res
    })
    // A quarter of the logins have answered: the delete lands among the rest.
    await someDone
    const deleted = await app.inject({ method: 'DELETE', url: `/api/users/${ada.id}`, headers: by === 'admin' ? admin : ada.auth })
    t.equal(deleted.statusCode, 204, `deleted by ${by}`)
    const results = await Promise.all(logins)
    const counts = statusCounts(results)
    t.equal((counts[200] ?? 0) + (counts[401] ?? 0), N, `every login is 200 or 401 (got ${JSON.stringify(counts)})`)
    for (const r of results.filter((r) => r.statusCode === 401)) t.equal(r.json().code, 'INVALID_CREDENTIALS')
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from refresh_tokens where user_id = ${ada.id}`.execute(app.database.db)
    t.equal(rows[0]?.n, 0, 'no refresh_tokens row references the deleted user')
    const issued = [before, ...results.filter((r) => r.statusCode === 200).map((r) => r.json<Tokens>())]
    const refreshed = await Promise.all(issued.map(async (s) => await refresh(app, s.refresh_token)))
    t.same(statusCounts(refreshed), { 401: issued.length }, `none of the ${issued.length} refresh tokens issued around the delete works`)
    assertProblem(t, await login(app, ada.email, ada.password), 401, 'INVALID_CREDENTIALS')
  }
})

t.test('refreshes racing a password change: no refresh token issued before the change survives it', async (t) => {
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '30' } })
  const ada = await signUp(app)
  let password = ada.password
  for (let round = 0; round < 3; round++) {
    const sessions = await Promise.all(Array.from({ length: 5 }, async () => (await login(app, ada.email, password)).json<Tokens>()))
    const next = `changed-password-${round}-${process.pid}`
    const refreshes = sessions.flatMap((s) => [refresh(app, s.refresh_token), refresh(app, s.refresh_token)])
    const change = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: bearer(String(sessions[0]?.access_token)), payload: { password: next, current_password: password } })
    t.equal(change.statusCode, 200, 'the password changed')
    password = next
    const results = await Promise.all(refreshes)
    t.same(Object.keys(statusCounts(results)).filter((s) => s !== '200' && s !== '401'), [], 'every refresh is 200 or 401')
    // Whatever the interleaving, every token of a session begun with the old password is now dead.
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from refresh_tokens where user_id = ${ada.id} and revoked_at is null`.execute(app.database.db)
    t.equal(rows[0]?.n, 0, `round ${round}: no live refresh token is left from before the change`)
    const won = results.filter((r) => r.statusCode === 200).map((r) => r.json<Tokens>().refresh_token)
    const after = await Promise.all([...sessions.map((s) => s.refresh_token), ...won].map(async (token) => await refresh(app, token)))
    t.same(statusCounts(after), { 401: after.length }, `all ${after.length} tokens from before or during the change are refused`)
  }
})

t.test('logout-all racing refreshes: no session survives it', async (t) => {
  const app = await build(t, { env: { REFRESH_REUSE_GRACE_SECONDS: '30' } })
  const ada = await signUp(app)
  const sessions = await Promise.all(Array.from({ length: 5 }, async () => (await login(app, ada.email, ada.password)).json<Tokens>()))
  const refreshes = sessions.flatMap((s) => [refresh(app, s.refresh_token), refresh(app, s.refresh_token)])
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(String(sessions[0]?.access_token)) })).statusCode, 204)
  const results = await Promise.all(refreshes)
  const won = results.filter((r) => r.statusCode === 200).map((r) => r.json<Tokens>().refresh_token)
  const after = await Promise.all([...sessions.map((s) => s.refresh_token), ...won].map(async (token) => await refresh(app, token)))
  t.same(statusCounts(after), { 401: after.length }, `all ${after.length} tokens are refused after logout-all`)
})

t.test('the repository refuses to issue a token for a missing user or under a revoked or unknown parent', async (t) => {
  const app = await build(t)
  const ada = await signUp(app)
  const repo = app.refreshTokenRepository
  const row = (over: { user_id?: string } = {}) => ({
    id: randomUUID(), family_id: randomUUID(), user_id: ada.id, token_hash: randomUUID(), expires_at: new Date(Date.now() + 60_000), ...over
  })
  t.equal(await repo.create(row({ user_id: randomUUID() })), false, 'no such user')
  t.equal(await repo.create(row(), randomUUID()), false, 'no such parent')
  const parent = row()
  t.equal(await repo.create(parent), true)
  t.equal(await repo.create(row(), parent.id), true, 'a live parent')
  await repo.revokeFamily(parent.family_id, new Date())
  t.equal(await repo.create(row(), parent.id), false, 'a revoked parent')
  t.equal(await repo.revokeFamily(randomUUID(), new Date()), false, 'an unknown family revokes nothing')
})
