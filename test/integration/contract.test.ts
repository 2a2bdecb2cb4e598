import { randomUUID } from 'node:crypto'
import t from 'tap'
import { ContractChecker, type OpenApiDocument } from '../contract.js'
import { ADMIN, ADMIN_ENV, build, newUser } from '../helper.js'

const json = (body: unknown): { payload: string, headers: Record<string, string> } =>
  ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })

t.test('every response of every operation, errors included, is what the OpenAPI document says', async (t) => {
  const app = await build(t, { env: { ...ADMIN_ENV, LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' } })
  const contract = new ContractChecker((await app.inject({ url: '/openapi.json' })).json<OpenApiDocument>(), app)
  const call = contract.inject.bind(contract)
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
  const login = async (email: string, password: string): Promise<{ access_token: string, refresh_token: string }> =>
    (await call({ method: 'POST', url: '/api/auth/login', ...json({ email, password }) })).json()

  for (const url of ['/health', '/health/live', '/health/ready', '/.well-known/jwks.json']) await call({ method: 'GET', url })

  // Signup: created, invalid, weak password, duplicate, not JSON, malformed JSON, too large.
  const ada = newUser()
  const created = await call({ method: 'POST', url: '/api/users', ...json(ada) })
  t.equal(created.statusCode, 201)
  const adaId = created.json<{ id: string }>().id
  await call({ method: 'POST', url: '/api/users', ...json({ email: 'nope' }) })
  await call({ method: 'POST', url: '/api/users', ...json(newUser({ password: 'password' })) })
  await call({ method: 'POST', url: '/api/users', ...json(ada) })
  await call({ method: 'POST', url: '/api/users', payload: 'email=a', headers: { 'content-type': 'text/plain' } })
  await call({ method: 'POST', url: '/api/users', payload: '{"email"', headers: { 'content-type': 'application/json' } })
  await call({ method: 'POST', url: '/api/users', ...json({ ...newUser(), padding: 'x'.repeat(64 * 1024) }) })

  // Login: success, wrong password, invalid body, then throttled.
  const adaTokens = await login(ada.email, ada.password)
  const admin = await login(ADMIN.email, ADMIN.password)
  await call({ method: 'POST', url: '/api/auth/login', ...json({ email: ada.email }) })
  const bob = newUser()
  await call({ method: 'POST', url: '/api/users', ...json(bob) })
  let throttled = 0
  for (let i = 0; i < 4 && throttled !== 429; i++) throttled = (await call({ method: 'POST', url: '/api/auth/login', ...json({ email: bob.email, password: 'wrong-password' }) })).statusCode
  t.equal(throttled, 429, 'throttled after repeated failures')

  // Refresh and logout.
  const refreshed = await call({ method: 'POST', url: '/api/auth/refresh', ...json({ refresh_token: adaTokens.refresh_token }) })
  t.equal(refreshed.statusCode, 200)
  await call({ method: 'POST', url: '/api/auth/refresh', ...json({ refresh_token: 'not-a-refresh-token' }) })
  await call({ method: 'POST', url: '/api/auth/refresh', ...json({}) })
  await call({ method: 'POST', url: '/api/auth/logout', ...json({ refresh_token: refreshed.json<{ refresh_token: string }>().refresh_token }) })
  await call({ method: 'POST', url: '/api/auth/logout', ...json({ refresh_token: '' }) })

  // The current user and their sessions.
  const ada2 = await login(ada.email, ada.password)
  await call({ method: 'GET', url: '/api/auth/me', headers: bearer(ada2.access_token) })
  await call({ method: 'GET', url: '/api/auth/me' })
  await call({ method: 'GET', url: '/api/auth/me', headers: bearer('not.a.jwt') })
  const sessions = await call({ method: 'GET', url: '/api/auth/sessions', headers: bearer(ada2.access_token) })
  const sessionId = sessions.json<{ data: Array<{ id: string }> }>().data[0]?.id ?? ''
  await call({ method: 'GET', url: '/api/auth/sessions' })
  await call({ method: 'DELETE', url: `/api/auth/sessions/${sessionId}`, headers: bearer(ada2.access_token) })
  await call({ method: 'DELETE', url: `/api/auth/sessions/${randomUUID()}`, headers: bearer(ada2.access_token) })
  await call({ method: 'DELETE', url: '/api/auth/sessions/not-a-uuid', headers: bearer(ada2.access_token) })
  await call({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(ada2.access_token) })
  await call({ method: 'POST', url: '/api/auth/logout-all' })

  // Users: list, get, change, look up, export; as admin, as the user, as nobody.
  const asAda = bearer(ada2.access_token)
  const asAdmin = bearer(admin.access_token)
  await call({ method: 'GET', url: '/api/users?limit=1', headers: asAdmin })
  await call({ method: 'GET', url: `/api/users?email=${encodeURIComponent(ada.email)}`, headers: asAdmin })
  await call({ method: 'GET', url: '/api/users?limit=0', headers: asAdmin })
  await call({ method: 'GET', url: '/api/users?cursor=garbage', headers: asAdmin })
  await call({ method: 'GET', url: '/api/users', headers: asAda })
  await call({ method: 'GET', url: '/api/users' })
  await call({ method: 'GET', url: `/api/users/${adaId}`, headers: asAda })
  await call({ method: 'GET', url: `/api/users/${randomUUID()}`, headers: asAda })
  await call({ method: 'GET', url: `/api/users/${randomUUID()}`, headers: asAdmin })
  await call({ method: 'GET', url: '/api/users/not-a-uuid', headers: asAdmin })
  const send = async (method: string, url: string, as: Record<string, string>, body: unknown): Promise<unknown> =>
    await call({ method, url, payload: JSON.stringify(body), headers: { ...as, 'content-type': 'application/json' } })
  await send('PATCH', `/api/users/${adaId}`, asAda, { username: `${ada.username}_x` })
  await send('PATCH', `/api/users/${adaId}`, asAda, {})
  await send('PATCH', `/api/users/${adaId}`, asAda, { email: 'ada2@example.com' })
  await send('PATCH', `/api/users/${adaId}`, asAda, { username: bob.username })
  await send('PATCH', `/api/users/${adaId}`, asAda, { role: 'admin' })
  await send('PATCH', `/api/users/${randomUUID()}`, asAdmin, { username: 'nobody_here' })
  await send('POST', '/api/users/lookup', asAdmin, { ids: [adaId, randomUUID()] })
  await send('POST', '/api/users/lookup', asAdmin, { ids: [] })
  await send('POST', '/api/users/lookup', asAda, { ids: [adaId] })
  const exported = await call({ method: 'GET', url: '/api/users/export', headers: asAdmin })
  t.match(exported.headers['content-type'], /^application\/x-ndjson/)
  t.equal(exported.body.trim().split('\n').length, 3, 'the export has a line per user, each checked')
  await call({ method: 'GET', url: '/api/users/export', headers: asAda })
  await call({ method: 'DELETE', url: `/api/users/${adaId}`, headers: asAda })
  await call({ method: 'DELETE', url: `/api/users/${adaId}`, headers: asAdmin })
  await call({ method: 'DELETE', url: '/api/users/not-a-uuid', headers: asAdmin })

  t.same(contract.violations, [], 'no response breaks the documented contract')
  const operations = Object.values(contract.doc.paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId))
  t.same(operations.filter((id) => !contract.exercised.has(id)), [], 'every operation was called')
  const errorStatuses = new Set([...contract.exercised.values()].flatMap((statuses) => [...statuses]).filter((s) => s >= 400))
  t.same([...errorStatuses].sort(), [400, 401, 403, 404, 409, 413, 415, 429], 'the error responses were exercised too')
})

t.test('the checker itself notices what it is there to notice', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json<OpenApiDocument>()
  // A document that no longer mentions 409 for signup, and whose User lost a property.
  const signup = doc.paths['/api/users']?.post
  if (signup !== undefined) delete signup.responses['409']
  const components = (doc as unknown as { components: { schemas: { User: { properties: Record<string, unknown> } } } }).components
  components.schemas.User.properties.id = { type: 'integer' }
  const contract = new ContractChecker(doc, app)
  const fields = newUser()
  await contract.inject({ method: 'POST', url: '/api/users', ...json(fields) })
  await contract.inject({ method: 'POST', url: '/api/users', ...json(fields) })
  await contract.inject({ method: 'GET', url: '/api/nothing-here' })
  await contract.inject({ method: 'GET', url: '/openapi.json' })
  t.match(contract.violations, [
    { request: 'POST /api/users', status: 201, problem: /createUser 201 application\/json: .*id must be integer/ },
    { request: 'POST /api/users', status: 409, problem: 'status 409 is not documented for createUser' },
    { request: 'GET /api/nothing-here', status: 404, problem: 'no operation in the document' },
    { request: 'GET /openapi.json', status: 200, problem: 'no operation in the document' }
  ])
})
