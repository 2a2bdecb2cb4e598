/**
 * Database and Redis faults (issue 8), against the real server process where the network matters.
 * The PostgreSQL faults need a PostgreSQL server and skip on PGlite, saying so; the Redis one runs
 * on both backends. A TcpProxy (test/tcp-proxy.ts) between the service and its dependency makes
 * outages, black holes and recoveries without touching the shared servers.
 *
 * Each test prints its figures (counts, latencies, recovery time) as a tap comment.
 * DB_FAULTS_LOAD_MS (default 5000) sets how long the kill loop runs; raise it for a soak.
 * DB_FAULTS_DEBUG=1 prints the server's errors and stderr from the kill-loop test.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t, { type Test } from 'tap'
import { assertProblem, backend, build, freshDatabaseUrl, newUser } from '../helper.js'
import { startServer } from '../processes.js'
import { TcpProxy } from '../tcp-proxy.js'

const onPostgres = { skip: backend === 'postgres' ? false : 'needs a PostgreSQL server: runs in the PostgreSQL pass of .ci/run' }
// Short timeouts so the test is quick; the bounds below are these plus a generous margin.
const CONNECTION_TIMEOUT_MS = 1000
const STATEMENT_TIMEOUT_MS = 2000
const MARGIN_MS = 3000
const TIMEOUTS = {
  DB_CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
  DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
  DB_POOL_SIZE: '4',
  REFRESH_REUSE_GRACE_SECONDS: '60',
  // Every request here comes from one address: the per-IP limits are not under test.
  SIGNUP_MAX_PER_IP: '1000000',
  LOGIN_MAX_FAILURES_PER_IP: '1000000'
}
const LOAD_MS = Number(process.env.DB_FAULTS_LOAD_MS ?? 5000)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Outcome { op: string, status: number, ms: number, type: string, retryAfter: string | null, body: Record<string, unknown>, error?: string }

/** One request; a dropped connection or a hang (past 30 s) is an outcome with status 0, not a throw. */
async function call (base: string, op: string, method: string, path: string, body?: unknown, token?: string): Promise<Outcome> {
  const started = performance.now()
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(token !== undefined && { authorization: `Bearer ${token}` }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    return { op, status: res.status, ms: performance.now() - started, type: res.headers.get('content-type') ?? '', retryAfter: res.headers.get('retry-after'), body: text === '' ? {} : JSON.parse(text) }
  } catch (err) {
    return { op, status: 0, ms: performance.now() - started, type: '', retryAfter: null, body: {}, error: String(err) }
  }
}

const SUCCESS: Record<string, number> = { signup: 201, login: 200, me: 200, refresh: 200, get: 200 }
const isCleanUnavailable = (o: Outcome): boolean =>
  o.status === 503 && o.type.startsWith('application/problem+json') && Number(o.retryAfter) > 0 && o.body.code === 'SERVICE_UNAVAILABLE'

/** A user with a session on the server, and the mixed requests a client of it makes. */
class Client {
  email = ''
  password = ''
  id = ''
  access = ''
  refreshToken = ''
  readonly base: string
  constructor (base: string) {
    this.base = base
  }

  async signUp (): Promise<void> {
    const fields = newUser()
    const created = await call(this.base, 'signup', 'POST', '/api/users', fields)
    if (created.status !== 201) throw new Error(`signup failed: ${JSON.stringify(created)}`)
    Object.assign(this, { email: fields.email, password: fields.password, id: String(created.body.id) })
    const session = await this.next('login')
    if (session.status !== 200) throw new Error(`login failed: ${JSON.stringify(session)}`)
  }

  /** One request of the given kind; a successful login or refresh replaces the session. */
  async next (op: string): Promise<Outcome> {
    const outcome = op === 'signup'
      ? await call(this.base, op, 'POST', '/api/users', newUser())
      : op === 'login'
        ? await call(this.base, op, 'POST', '/api/auth/login', { email: this.email, password: this.password })
        : op === 'me'
          ? await call(this.base, op, 'GET', '/api/auth/me', undefined, this.access)
          : op === 'get'
            ? await call(this.base, op, 'GET', `/api/users/${this.id}`, undefined, this.access)
            // A refresh that got a 503 is retried with the same token: the grace window covers it.
            : await call(this.base, op, 'POST', '/api/auth/refresh', { refresh_token: this.refreshToken })
    if ((op === 'login' || op === 'refresh') && outcome.status === 200) {
      this.access = String(outcome.body.access_token)
      this.refreshToken = String(outcome.body.refresh_token)
    }
    return outcome
  }
}
const OPS = ['signup', 'login', 'me', 'refresh', 'get']

async function mixedRound (clients: Client[]): Promise<Outcome[]> {
  return await Promise.all(clients.flatMap((c) => OPS.map(async (op) => await c.next(op))))
}

function summary (outcomes: Outcome[]): string {
  const counts: Record<string, number> = {}
  for (const o of outcomes) counts[o.status] = (counts[o.status] ?? 0) + 1
  const worst = Math.round(Math.max(0, ...outcomes.map((o) => o.ms)))
  return `${outcomes.length} requests, by status ${JSON.stringify(counts)}, slowest ${worst} ms`
}

/** Every outcome is the op's success or a clean 503; reports the others. */
function assertSuccessOr503 (t: Test, outcomes: Outcome[], what: string): void {
  const bad = outcomes.filter((o) => o.status !== SUCCESS[o.op] && !isCleanUnavailable(o))
  t.same(bad.slice(0, 5), [], `${what}: every answer is a success or a 503 problem+json with Retry-After (${bad.length} others)`)
}

async function waitUntilReady (base: string, limitMs = 30_000): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < limitMs) {
    if ((await call(base, 'ready', 'GET', '/health/ready')).status === 200) return performance.now() - started
    await sleep(100)
  }
  throw new Error('not ready again in time')
}

/** The server, on a fresh PostgreSQL database reached through a proxy. */
async function serverBehindProxy (t: Test, env: Record<string, string> = {}) {
  const url = new URL(String(await freshDatabaseUrl(t)))
  const proxy = await new TcpProxy({ host: url.hostname, port: Number(url.port === '' ? 5432 : url.port) }).start()
  t.teardown(async () => { await proxy.stop() })
  url.host = `127.0.0.1:${proxy.port}`
  const { base } = await startServer(t, { ...TIMEOUTS, DATABASE_URL: url.toString(), ...env })
  return { base, proxy }
}

async function clientsOn (base: string, count: number): Promise<Client[]> {
  return await Promise.all(Array.from({ length: count }, async () => {
    const c = new Client(base)
    await c.signUp()
    return c
  }))
}

t.test('PostgreSQL backends terminated again and again under mixed load: a success or a clean 503 each time, then all succeed without a restart', onPostgres, async (t) => {
  const url = String(await freshDatabaseUrl(t))
  const database = new URL(url).pathname.slice(1)
  const { base, child } = await startServer(t, { ...TIMEOUTS, DATABASE_URL: url })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdout?.on('data', (d: Buffer) => { if (/"level":(50|60)/.test(d.toString())) stderr += d.toString() })
  t.teardown(() => { if (process.env.DB_FAULTS_DEBUG !== undefined) console.error(stderr.replace(/"client":\{.*?"msg"/g, '"msg"')) })
  const clients = await clientsOn(base, 6)

  const admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
  await admin.connect()
  t.teardown(async () => { await admin.end() })
  const state = { running: true }
  let rounds = 0
  let terminated = 0
  const killer = (async () => {
    while (state.running) {
      const res = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [database])
      rounds++
      terminated += res.rowCount ?? 0
      await sleep(50)
    }
  })()
  const outcomes: Outcome[] = []
  const load = Promise.all(clients.map(async (c, i) => {
    for (let n = i; state.running; n++) outcomes.push(await c.next(OPS[n % OPS.length] ?? 'me'))
  }))
  await sleep(LOAD_MS)
  state.running = false
  await Promise.all([killer, load])

  t.comment(`kill loop: ${rounds} rounds of pg_terminate_backend, ${terminated} backends killed; ${summary(outcomes)}`)
  t.ok(terminated > 0, 'the service\'s backends were terminated')
  t.same(outcomes.filter((o) => o.status === 0).map((o) => o.error), [], 'no dropped connection, no hang')
  assertSuccessOr503(t, outcomes, 'during the kill loop')
  t.ok(outcomes.some((o) => o.status === 503), 'some requests met a dead connection (503)')

  const recovered = await waitUntilReady(base)
  const after = (await Promise.all([mixedRound(clients), mixedRound(clients)])).flat()
  t.comment(`after the kill loop: ready again in ${Math.round(recovered)} ms; ${summary(after)}`)
  t.same(after.filter((o) => o.status !== SUCCESS[o.op]).map((o) => [o.op, o.status]), [], 'every request succeeds again')
})

t.test('a database port that refuses connections: 503 problem+json fast, readiness 503 naming the database, liveness 200', async (t) => {
  // A port nothing listens on: stop a proxy, keep its number.
  const closed = await new TcpProxy({ host: '127.0.0.1', port: 1 }).start()
  await closed.stop()
  const { base } = await startServer(t, { ...TIMEOUTS, DATABASE_URL: `postgres://postgres@127.0.0.1:${closed.port}/nowhere`, MIGRATE_ON_START: 'false' })
  const outcomes = [
    await call(base, 'signup', 'POST', '/api/users', newUser()),
    await call(base, 'login', 'POST', '/api/auth/login', { email: 'someone@example.com', password: 'a-password-1' }),
    await call(base, 'refresh', 'POST', '/api/auth/refresh', { refresh_token: 'x'.repeat(43) }),
    ...await Promise.all(Array.from({ length: 20 }, async () => await call(base, 'signup', 'POST', '/api/users', newUser())))
  ]
  t.comment(`refused connections: ${summary(outcomes)} (connection timeout ${CONNECTION_TIMEOUT_MS} ms)`)
  t.same(outcomes.filter((o) => !isCleanUnavailable(o)), [], 'every request is a 503 problem+json with Retry-After')
  t.ok(outcomes.every((o) => o.ms < CONNECTION_TIMEOUT_MS + MARGIN_MS), 'each answered within the connection timeout plus a margin')
  const ready = await call(base, 'ready', 'GET', '/health/ready')
  t.equal(ready.status, 503)
  t.match(ready.body, { status: 'unavailable', checks: { database: 'failed' } })
  t.equal((await call(base, 'live', 'GET', '/health/live')).status, 200, 'liveness stays 200')
})

t.test('an outage and recovery behind a proxy: 503 during, readiness false; then ready and every request succeeds, no restart', onPostgres, async (t) => {
  const { base, proxy } = await serverBehindProxy(t)
  const clients = await clientsOn(base, 4)
  t.same((await mixedRound(clients)).filter((o) => o.status !== SUCCESS[o.op]), [], 'all well before the outage')

  await proxy.stop()
  const during = [...await mixedRound(clients), ...await mixedRound(clients)]
  const ready = await call(base, 'ready', 'GET', '/health/ready')
  t.comment(`outage: ${summary(during)} (connection timeout ${CONNECTION_TIMEOUT_MS} ms, statement timeout ${STATEMENT_TIMEOUT_MS} ms)`)
  t.same(during.filter((o) => !isCleanUnavailable(o)).map((o) => [o.op, o.status]), [], 'every request is a clean 503')
  t.ok(during.every((o) => o.ms < CONNECTION_TIMEOUT_MS + MARGIN_MS), 'each answered within the connection timeout plus a margin')
  t.equal(ready.status, 503, 'readiness is false')
  t.equal(ready.body.checks !== undefined && (ready.body.checks as Record<string, string>).database, 'failed', 'naming the database')
  t.equal((await call(base, 'live', 'GET', '/health/live')).status, 200, 'liveness stays 200')

  await proxy.start()
  const recovered = await waitUntilReady(base)
  const after = (await Promise.all([mixedRound(clients), mixedRound(clients)])).flat()
  t.comment(`recovery: ready ${Math.round(recovered)} ms after the database came back; ${summary(after)}`)
  t.same(after.filter((o) => o.status !== SUCCESS[o.op]).map((o) => [o.op, o.status]), [], 'every request succeeds again')
})

t.test('a black hole (connections accepted, nothing answered): 503 within the timeouts, no hang; then recovery', onPostgres, async (t) => {
  const { base, proxy } = await serverBehindProxy(t)
  const clients = await clientsOn(base, 4)
  // Warm the pool, so the black hole swallows queries on open connections as well as new ones.
  await mixedRound(clients)
  proxy.blackHole()
  const during = [...await mixedRound(clients), ...await mixedRound(clients)]
  const ready = await call(base, 'ready', 'GET', '/health/ready')
  // A query times out on the client a second after the statement timeout (query_timeout), and a
  // transaction's rollback on the same dead connection can take as long again.
  const bound = 2 * (STATEMENT_TIMEOUT_MS + 1000) + CONNECTION_TIMEOUT_MS + MARGIN_MS
  t.comment(`black hole: ${summary(during)} (bound ${bound} ms)`)
  t.same(during.filter((o) => !isCleanUnavailable(o)).map((o) => [o.op, o.status, Math.round(o.ms)]), [], 'every request is a clean 503')
  t.ok(during.every((o) => o.ms < bound), 'none waited past the statement and connection timeouts plus a margin')
  t.equal(ready.status, 503, 'readiness is false')

  proxy.forward()
  const recovered = await waitUntilReady(base)
  const after = (await Promise.all([mixedRound(clients), mixedRound(clients)])).flat()
  t.comment(`after the black hole: ready in ${Math.round(recovered)} ms; ${summary(after)}`)
  t.same(after.filter((o) => o.status !== SUCCESS[o.op]).map((o) => [o.op, o.status]), [], 'every request succeeds again')
})

t.test('Redis cut mid-run: logins and signups keep working with in-memory counting, readiness names redis; shared counting resumes after', async (t) => {
  const redis = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  const proxy = await new TcpProxy({ host: redis.hostname, port: Number(redis.port === '' ? 6379 : redis.port) }).start()
  t.teardown(async () => { await proxy.stop() })
  const env = { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, LOGIN_MAX_FAILURES_PER_ACCOUNT: '3' }
  // Two replicas sharing Redis; each has its own database here, so each signs the user up.
  const one = await build(t, { env })
  const two = await build(t, { env })
  const account = async () => {
    const fields = newUser({ email: `redis-${randomBytes(6).toString('hex')}@example.com` })
    for (const app of [one, two]) t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: fields })).statusCode, 201)
    return fields
  }
  const attempt = async (app: typeof one, email: string, password: string) =>
    await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email, password } })

  const ada = await account()
  t.equal((await attempt(one, ada.email, 'wrong-password')).statusCode, 401)
  await proxy.stop()

  const started = performance.now()
  const ready = await one.inject({ url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json().checks, { database: 'ok', redis: 'failed', shutdown: 'ok' }, 'readiness names redis, and only redis')
  t.equal((await one.inject({ url: '/health/live' })).statusCode, 200)
  const bob = await account()
  const login = await attempt(one, bob.email, bob.password)
  t.equal(login.statusCode, 200, 'logins work')
  const refreshed = await one.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: login.json().refresh_token } })
  t.equal(refreshed.statusCode, 200, 'refresh works')
  t.equal((await one.inject({ url: '/api/auth/me', headers: { authorization: `Bearer ${String(refreshed.json().access_token)}` } })).statusCode, 200, 'authenticated requests work')
  // The limit still holds, counted in this replica's memory (README: "each replica counts in its own memory").
  for (let i = 0; i < 3; i++) assertProblem(t, await attempt(one, bob.email, 'wrong-password'), 401, 'INVALID_CREDENTIALS')
  assertProblem(t, await attempt(one, bob.email, bob.password), 429, 'TOO_MANY_REQUESTS')
  t.equal((await attempt(two, bob.email, bob.password)).statusCode, 200, 'the other replica did not see those failures: its own memory')
  t.comment(`Redis down: readiness, a signup on both replicas, 9 logins and a refresh answered in ${Math.round(performance.now() - started)} ms in all`)

  await proxy.start()
  const back = performance.now()
  while (((await one.inject({ url: '/health/ready' })).statusCode !== 200 || (await two.inject({ url: '/health/ready' })).statusCode !== 200) && performance.now() - back < 20_000) await sleep(100)
  t.comment(`Redis back: both replicas ready in ${Math.round(performance.now() - back)} ms`)
  t.equal((await one.inject({ url: '/health/ready' })).statusCode, 200, 'ready again')
  const cy = await account()
  for (const app of [one, two, one]) assertProblem(t, await attempt(app, cy.email, 'wrong-password'), 401, 'INVALID_CREDENTIALS')
  assertProblem(t, await attempt(two, cy.email, cy.password), 429, 'TOO_MANY_REQUESTS')
  t.comment('shared counting resumed: failures on both replicas added up to the limit')
})
