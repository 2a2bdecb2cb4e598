import helmet from 'helmet'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp } from '../../app.js'
import { assertProblem, build, freshDatabaseUrl, newUser, signUp, testConfig, testHasher } from '../helper.js'

t.test('error answers', async (t) => {
  const app = await build(t, { env: { BODY_LIMIT: '2048', CORS_ORIGINS: 'https://app.example.com' } })

  t.test('an unknown route is 404 problem+json', async (t) => {
    assertProblem(t, await app.inject({ url: '/nope' }), 404, 'NOT_FOUND')
    assertProblem(t, await app.inject({ method: 'PUT', url: '/api/users' }), 404, 'NOT_FOUND')
  })

  t.test('malformed JSON is 400 MALFORMED_JSON', async (t) => {
    const headers = { 'content-type': 'application/json' }
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/users', headers, payload: '{"email":' }), 400, 'MALFORMED_JSON')
    assertProblem(t, await app.inject({ method: 'POST', url: '/api/auth/login', headers, payload: '' }), 400, 'MALFORMED_JSON')
  })

  t.test('a JSON body that is not an object is a validation failure', async (t) => {
    for (const payload of ['[]', '"text"', 'null', '42']) {
      const res = await app.inject({ method: 'POST', url: '/api/users', headers: { 'content-type': 'application/json' }, payload })
      assertProblem(t, res, 400, 'VALIDATION_FAILED')
    }
  })

  t.test('a body over BODY_LIMIT is 413 PAYLOAD_TOO_LARGE', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', payload: { ...newUser(), username: 'x'.repeat(4096) } })
    assertProblem(t, res, 413, 'PAYLOAD_TOO_LARGE')
  })

  t.test('a body that is not JSON is 415 UNSUPPORTED_MEDIA_TYPE', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/api/users', headers: { 'content-type': 'text/plain' }, payload: 'email=a' })
    assertProblem(t, res, 415, 'UNSUPPORTED_MEDIA_TYPE')
  })

  t.test('security headers are on every response, errors included: exactly the ones helmet sets', async (t) => {
    // helmet itself, as middleware on a bare Node server: the headers our precomputed set must match.
    const server = createServer((req, res) => { helmet()(req, res, () => res.end()) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { server.close() })
    const reference = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
    const expected = [...reference.headers].filter(([name]) => !['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name))
    t.ok(expected.length >= 10, `helmet sets ${expected.length} headers`)
    for (const res of [await app.inject({ url: '/health' }), await app.inject({ url: '/nope' }), await app.inject({ method: 'POST', url: '/api/users', payload: '{' }), await app.inject({ url: '/api/users/%zz' })]) {
      for (const [name, value] of expected) t.equal(res.headers[name], value, `${res.statusCode}: ${name}`)
      t.equal(res.headers['x-powered-by'], undefined)
    }
  })

  t.test('CORS answers only allowlisted origins', async (t) => {
    const preflight = (origin: string) => app.inject({
      method: 'OPTIONS',
      url: '/api/auth/login',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' }
    })
    const allowed = await preflight('https://app.example.com')
    t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
    const denied = await preflight('https://evil.example.com')
    t.equal(denied.headers['access-control-allow-origin'], undefined)
  })

  t.test('without CORS_ORIGINS no origin is allowed, and a preflight is not answered', async (t) => {
    const closed = await build(t)
    const res = await closed.inject({
      method: 'OPTIONS',
      url: '/api/auth/login',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' }
    })
    assertProblem(t, res, 404, 'NOT_FOUND')
    t.equal(res.headers['access-control-allow-origin'], undefined)
    const get = await closed.inject({ url: '/health', headers: { origin: 'https://app.example.com' } })
    t.equal(get.headers['access-control-allow-origin'], undefined)
  })

  t.test('request ids: a sane x-request-id is kept and echoed, anything else replaced', async (t) => {
    const kept = await app.inject({ url: '/nope', headers: { 'x-request-id': 'trace-123.abc' } })
    t.equal(kept.headers['x-request-id'], 'trace-123.abc')
    t.equal(kept.json().instance, 'urn:gatehouse:request:trace-123.abc')
    const replaced = await app.inject({ url: '/health', headers: { 'x-request-id': 'bad id\nwith newline' } })
    t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/)
    const fresh = await app.inject({ url: '/health' })
    t.match(fresh.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  })
})

t.test('at LOG_LEVEL=warn a request that goes well logs nothing, and one that fails logs with its request id', async (t) => {
  const url = await freshDatabaseUrl(t)
  const lines: Array<Record<string, unknown>> = []
  const app = await buildApp(testConfig({ LOG_LEVEL: 'warn', ...(url !== undefined && { DATABASE_URL: url }) }), {
    hasher: testHasher,
    logStream: { write: (line) => { lines.push(JSON.parse(line)) } }
  })
  t.teardown(async () => { await app.close() })
  app.get('/boom', async () => { throw new Error('failed on purpose') })
  await app.ready()
  lines.length = 0
  t.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
  t.same(lines, [], 'nothing logged for a request that went well')
  const res = await app.inject({ url: '/boom', headers: { 'x-request-id': 'trace-me-1' } })
  t.equal(res.statusCode, 500)
  t.match(lines, [{ level: 50, reqId: 'trace-me-1', msg: 'request failed', err: { message: 'failed on purpose' } }])
})

t.test('an unexpected error is 500 INTERNAL_ERROR with no details, and the details are logged', async (t) => {
  const url = await freshDatabaseUrl(t)
  const lines: string[] = []
  const app = await buildApp(testConfig({ LOG_LEVEL: 'info', ...(url !== undefined && { DATABASE_URL: url }) }), {
    hasher: testHasher,
    logStream: { write: (line) => { lines.push(line) } }
  })
  t.teardown(async () => { await app.close() })
  // A route added by the test itself, the way a bug in a handler would surface.
  app.get('/boom', async () => { throw new Error('secret internal detail') })
  // Errors other plugins raise with a status of their own (as under-pressure does with 503).
  app.get('/busy', async () => { throw Object.assign(new Error('too busy'), { statusCode: 503 }) })
  app.get('/teapot', async () => { throw Object.assign(new Error('short and stout'), { statusCode: 418 }) })
  await app.ready()

  const res = await app.inject({ url: '/boom' })
  const body = assertProblem(t, res, 500, 'INTERNAL_ERROR')
  t.notMatch(JSON.stringify(body), /secret internal detail|at .*\.ts/, 'no message or stack trace in the answer')
  t.ok(lines.some((l) => l.includes('secret internal detail') && l.includes('"level":50')), 'logged at error level with the message')

  t.test('an error carrying its own status keeps it, with a generic code', async (t) => {
    const busy = assertProblem(t, await app.inject({ url: '/busy' }), 503, 'SERVICE_UNAVAILABLE')
    t.equal(busy.detail, 'too busy')
    const teapot = assertProblem(t, await app.inject({ url: '/teapot' }), 418, 'BAD_REQUEST')
    t.equal(teapot.title, "I'm a Teapot")
  })

  t.test('passwords, hashes and tokens never reach the log', async (t) => {
    lines.length = 0
    const ada = await signUp(app)
    await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: 'wrong-password' } })
    await app.inject({ url: '/api/auth/me', headers: ada.auth })
    await app.inject({ url: '/api/auth/me', headers: { authorization: 'Bearer tampered.token.value' } })
    const log = lines.join('')
    t.ok(lines.length > 4, 'requests were logged')
    for (const secret of [ada.password, 'wrong-password', ada.token, '$argon2id', 'tampered.token.value']) {
      t.notOk(log.includes(secret), `log does not contain ${secret.slice(0, 12)}…`)
    }
  })
})

t.test('a database that refuses connections gives 503 SERVICE_UNAVAILABLE with Retry-After, not 500', async (t) => {
  const app = await buildApp(testConfig({
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere',
    MIGRATE_ON_START: 'false',
    DB_CONNECTION_TIMEOUT_MS: '500'
  }), { hasher: testHasher })
  t.teardown(async () => { await app.close() })
  await app.ready()
  const res = await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })
  assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After is set')
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@example.com', password: 'whatever1' } })
  assertProblem(t, login, 503, 'SERVICE_UNAVAILABLE')
})

t.test('start-up fails cleanly when migrations cannot run', async (t) => {
  await t.rejects(buildApp(testConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', DB_CONNECTION_TIMEOUT_MS: '500' }), { hasher: testHasher }))
})
