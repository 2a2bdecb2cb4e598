import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { assertProblem, backend, build, newUser, signUp } from '../helper.js'

t.test('probes', async (t) => {
  const app = await build(t)

  t.test('liveness and the compatibility route answer ok without checking anything', async (t) => {
    for (const url of ['/health/live', '/health']) {
      const res = await app.inject({ url })
      t.equal(res.statusCode, 200, url)
      t.same(res.json(), { status: 'ok' })
    }
  })

  t.test('readiness checks the database and reports each check', async (t) => {
    const res = await app.inject({ url: '/health/ready' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'ok', checks: { database: 'ok', redis: 'skipped', shutdown: 'ok' } })
  })

  t.test('readiness turns 503 while draining, and back', async (t) => {
    app.lifecycle.draining = true
    const res = await app.inject({ url: '/health/ready' })
    app.lifecycle.draining = false
    t.equal(res.statusCode, 503)
    t.same(res.json().checks.shutdown, 'draining')
    t.equal((await app.inject({ url: '/health/live' })).statusCode, 200, 'liveness is unaffected')
  })
})

t.test('readiness with Redis configured', async (t) => {
  t.test('reachable Redis: ok', async (t) => {
    const app = await build(t, { env: { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' } })
    const res = await app.inject({ url: '/health/ready' })
    t.same(res.json(), { status: 'ok', checks: { database: 'ok', redis: 'ok', shutdown: 'ok' } })
  })
  t.test('unreachable Redis: 503 naming redis, while the API keeps working', async (t) => {
    const app = await build(t, { env: { REDIS_URL: 'redis://127.0.0.1:1' } })
    const res = await app.inject({ url: '/health/ready' })
    t.equal(res.statusCode, 503)
    t.same(res.json().checks, { database: 'ok', redis: 'failed', shutdown: 'ok' })
    t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })).statusCode, 201)
  })
})

t.test('readiness fails, naming the database, when PostgreSQL is unreachable', async (t) => {
  const app = await build(t, { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', MIGRATE_ON_START: 'false', DB_CONNECTION_TIMEOUT_MS: '300' } })
  const res = await app.inject({ url: '/health/ready' })
  t.equal(res.statusCode, 503)
  t.same(res.json().checks.database, 'failed')
})

t.test('after its connections are killed, the service recovers without a restart', { skip: backend === 'postgres' ? false : 'needs a PostgreSQL server: runs in the PostgreSQL pass of .ci/run' }, async (t) => {
  const app = await build(t)
  const ada = await signUp(app)
  const { sql } = await import('kysely')
  const { rows: [current] } = await sql<{ name: string }>`select current_database() as name`.execute(app.database.db)
  // What a database failover or restart does to the pool: every backend of this database dies,
  // killed from outside as an operator (or a crash) would.
  const pg = await import('pg')
  const admin = new pg.default.Client({ connectionString: process.env.DATABASE_URL })
  await admin.connect()
  const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [current?.name])
  await admin.end()
  t.ok((killed.rowCount ?? 0) > 0, 'the service\'s connections were terminated')
  const during = await app.inject({ url: '/api/auth/me', headers: ada.auth })
  t.ok([200, 503].includes(during.statusCode), `a request that meets a dead connection gets 200 or 503, never 500 (got ${during.statusCode})`)
  for (let i = 0; i < 5; i++) {
    t.equal((await app.inject({ url: '/api/auth/me', headers: ada.auth })).statusCode, 200, `request ${i + 1} after the outage succeeds`)
  }
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})

t.test('load shedding: past a limit, requests get 503 with Retry-After, probes do not', async (t) => {
  // A 1 MiB heap limit is always exceeded: a deterministic stand-in for real memory pressure.
  const app = await build(t, { env: { LOAD_SHED_HEAP_USED_MB: '1' } })
  await new Promise((resolve) => setTimeout(resolve, 1200))
  const res = await app.inject({ method: 'POST', url: '/api/users', payload: newUser() })
  assertProblem(t, res, 503, 'SERVICE_UNAVAILABLE')
  t.ok(Number(res.headers['retry-after']) > 0)
  for (const url of ['/health/live', '/health/ready']) t.equal((await app.inject({ url })).statusCode, 200, `${url} is not shed`)
})

t.test('load shedding on the database queue: too many requests waiting for a connection get 503', async (t) => {
  const app = await build(t, { env: { LOAD_SHED_DB_WAITING: '2', DB_POOL_SIZE: '1' } })
  const ada = await signUp(app)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  // Hold the only connection, as a slow query would, and let requests pile up behind it.
  const holder = app.database.db.connection().execute(async () => { await held })
  const queued = Array.from({ length: 4 }, async () => await app.inject({ url: '/api/auth/me', headers: ada.auth }))
  while (app.database.waitingCount() < 4) await new Promise((resolve) => setTimeout(resolve, 10))
  await new Promise((resolve) => setTimeout(resolve, 600)) // the queue check runs every 250 ms

  assertProblem(t, await app.inject({ url: '/api/auth/me', headers: ada.auth }), 503, 'SERVICE_UNAVAILABLE')
  const ready = await app.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 503, 'readiness reports the database as failing while it cannot answer in time')
  t.equal(ready.json().checks.database, 'failed')

  release()
  await holder
  t.same((await Promise.all(queued)).map((r) => r.statusCode), [200, 200, 200, 200], 'queued requests were served, not dropped')
  while (app.database.waitingCount() > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal((await app.inject({ url: '/api/auth/me', headers: ada.auth })).statusCode, 200, 'recovers once the queue drains')
})

t.test('metrics', async (t) => {
  const app = await build(t, { env: { METRICS_TOKEN: 'metrics-token-0123456789' } })
  const auth = { authorization: 'Bearer metrics-token-0123456789' }
  const ada = await signUp(app)
  await app.inject({ url: `/api/users/${ada.id}`, headers: ada.auth })
  await app.inject({ url: '/api/users/01a21226-ca21-7191-8cfb-01f1e5441dc5', headers: ada.auth })
  await app.inject({ url: '/no/such/page/12345' })
  await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: 'wrong-password' } })
  await app.inject({ url: '/health/ready' })

  t.test('needs the token when one is configured', async (t) => {
    assertProblem(t, await app.inject({ url: '/metrics' }), 401, 'UNAUTHORIZED')
    assertProblem(t, await app.inject({ url: '/metrics', headers: { authorization: 'Bearer wrong' } }), 401, 'UNAUTHORIZED')
  })

  t.test('Prometheus text with per-route series labelled by pattern and status class', async (t) => {
    const res = await app.inject({ url: '/metrics', headers: auth })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    const body = res.body
    t.match(body, /gatehouse_http_request_duration_seconds_count\{method="GET",route="\/api\/users\/:id",status_class="2xx"\} 1/)
    t.match(body, /gatehouse_http_request_duration_seconds_count\{method="GET",route="\/api\/users\/:id",status_class="4xx"\} 1/)
    t.match(body, /route="unmatched",status_class="4xx"/)
    t.notMatch(body, /12345|01a21226|\/health|route="\/metrics"/, 'no raw URLs, ids, probes or scrapes in the labels')
    t.match(body, /gatehouse_logins_total\{outcome="success"\} 1/)
    t.match(body, /gatehouse_logins_total\{outcome="failure"\} 1/)
    t.match(body, /gatehouse_db_pool_waiting 0/)
    t.match(body, /gatehouse_db_pool_connections\{state="total"\} \d+/)
    t.match(body, /gatehouse_nodejs_eventloop_lag_seconds/)
    t.match(body, /gatehouse_nodejs_heap_size_used_bytes/)
    t.match(body, /gatehouse_nodejs_gc_duration_seconds/)
  })
})

t.test('a client that sends its request too slowly gets 408 problem+json', async (t) => {
  const app = await build(t, { env: { REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '1000' } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      // Headers complete, body promised but never finished: the slow-body case.
      socket.write('POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"em')
    })
    let data = ''
    socket.on('data', (d) => { data += d.toString() })
    socket.on('close', () => { resolve(data) })
    socket.on('error', reject)
  })
  t.match(answer, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(answer, /Connection: close/)
  t.match(answer, /Content-Type: application\/problem\+json/)
  t.match(answer, /"code":"REQUEST_TIMEOUT"/)
  const res = await fetch(`http://127.0.0.1:${port}/health/live`)
  t.equal(res.status, 200, 'other clients are served')

  const raw = async (request: string): Promise<string> => await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.write(request) })
    let data = ''
    socket.on('data', (d) => { data += d.toString() })
    socket.on('close', () => { resolve(data) })
    socket.on('error', reject)
  })
  t.test('headers beyond Node\'s limit: 431 problem+json', async (t) => {
    const answer = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 431 /)
    t.match(answer, /"code":"HEADERS_TOO_LARGE"/)
  })
  t.test('a request line that is not HTTP: 400 problem+json', async (t) => {
    const answer = await raw('NOT HTTP AT ALL\r\n\r\n')
    t.match(answer, /^HTTP\/1\.1 400 /)
    t.match(answer, /"code":"BAD_REQUEST"/)
  })
})
