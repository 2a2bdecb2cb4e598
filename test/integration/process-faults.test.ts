/**
 * Process faults (issue 8), against real server processes on a database that outlives them: a
 * fresh PostgreSQL database when DATABASE_URL is set, else PGlite in a data directory.
 *
 * - SIGTERM under a concurrent load of signups and reads: every request the server received (it
 *   logs each one, with the request id the client chose) got a complete answer; the requests that
 *   failed at the client never reached it; every 201 is in the database, and nothing else is.
 *   (shutdown.test.ts proves the load-balancer view, readiness first and then no failed request.)
 * - SIGKILL under a load of signups and password changes: every 201 and every acknowledged
 *   password change is there when a new server starts on the same database, an unacknowledged
 *   change is all or nothing, migrations run again as a no-op, and the new server serves.
 *
 * - A password change is all or nothing: the new password and the end of the old sessions commit
 *   together, so a fault between them (a kill, a lost connection) cannot leave one without the other.
 *
 * PGlite and SIGKILL: PGlite starts PostgreSQL with fsync off (-F) and its Node filesystem has no
 * fsync at all (electric-sql/pglite#1107), but it writes the WAL to the data directory with plain
 * write() calls at commit. A killed process therefore loses nothing the kernel already holds: the
 * guarantee tested here. A machine crash or power loss is another matter, which PGlite does not
 * cover: production durability needs PostgreSQL (README).
 */
import { randomUUID } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import t, { type Test } from 'tap'
import { sql } from 'kysely'
import { ADMIN, ADMIN_ENV, build, freshDatabaseUrl, newUser, signUp } from '../helper.js'
import { collect, listening, postJson, run } from '../processes.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Waits for the load to reach a point; a load that never gets there fails the test instead of hanging it. */
async function until (reached: () => boolean, what = 'the load to build up'): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!reached()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

interface Server { child: ChildProcess, base: string, exited: ReturnType<typeof collect> }

/** Where this test's data lives: one database (or PGlite directory) for all the servers it starts. */
async function durableDatabase (t: Test): Promise<Record<string, string>> {
  const url = await freshDatabaseUrl(t)
  return url !== undefined ? { DATABASE_URL: url } : { PGLITE_DATA_DIR: `${t.testdir()}/pglite` }
}

async function start (t: Test, database: Record<string, string>, env: Record<string, string> = {}): Promise<Server> {
  const child = run('server.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: 'process-test-secret-at-least-32-chars',
    // All the load comes from one address: the per-IP signup limit (20) must not turn it into 429s.
    SIGNUP_MAX_PER_IP: '1000000',
    ...ADMIN_ENV,
    ...database,
    ...env
  })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  return { child, base: await listening(child), exited }
}

interface Outcome { id: string, kind: string, status?: number, complete?: boolean, error?: string, email?: string, password?: string }

/** One request with a request id of our choosing, recorded whatever happens to it. */
async function attempt (outcomes: Outcome[], kind: string, url: string, init: RequestInit, extra: Partial<Outcome> = {}): Promise<Outcome> {
  const id = `${kind}-${randomUUID()}`
  const outcome: Outcome = { id, kind, ...extra }
  outcomes.push(outcome)
  try {
    const res = await fetch(url, { ...init, headers: { ...init.headers as Record<string, string>, 'x-request-id': id } })
    outcome.status = res.status
    const body = await res.text()
    // A complete answer: the whole body arrived and parses (every answer of this API is JSON).
    JSON.parse(body)
    outcome.complete = true
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string, message?: string } }).cause
    outcome.error = cause?.code ?? cause?.message ?? (err as Error).message
  }
  return outcome
}

const json = { 'content-type': 'application/json' }

async function adminAuth (base: string): Promise<{ authorization: string }> {
  const res = await postJson(`${base}/api/auth/login`, { email: ADMIN.email, password: ADMIN.password })
  const { access_token: token } = await res.json() as { access_token: string }
  return { authorization: `Bearer ${token}` }
}

/** Emails, of those given, that the server finds, looked up one by one as the admin (no password hashing). */
async function storedEmails (base: string, emails: string[]): Promise<Set<string>> {
  const auth = await adminAuth(base)
  const found = new Set<string>()
  for (const email of emails) {
    const res = await fetch(`${base}/api/users?email=${encodeURIComponent(email)}`, { headers: auth })
    const { data } = await res.json() as { data: Array<{ email: string }> }
    if (data.length === 1) found.add(email)
  }
  return found
}

/** Every user in the database, page by page. */
async function allEmails (base: string): Promise<Set<string>> {
  const auth = await adminAuth(base)
  const emails = new Set<string>()
  let cursor: string | null = null
  do {
    const res = await fetch(`${base}/api/users?limit=100${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`, { headers: auth })
    const page = await res.json() as { data: Array<{ email: string }>, next_cursor: string | null }
    for (const user of page.data) emails.add(user.email)
    cursor = page.next_cursor
  } while (cursor !== null)
  return emails
}

const tally = (outcomes: Outcome[]): string => JSON.stringify(outcomes.reduce<Record<string, number>>((acc, o) => {
  const key = `${o.kind} ${o.status ?? o.error ?? '?'}`
  acc[key] = (acc[key] ?? 0) + 1
  return acc
}, {}))

t.test('SIGTERM under a load of signups and reads: every received request is answered in full, every 201 is stored, exit 0', async (t) => {
  const database = await durableDatabase(t)
  const first = await start(t, database)
  const reader = newUser()
  const signedUp = await postJson(`${first.base}/api/users`, reader)
  t.equal(signedUp.status, 201)
  const { id: readerId } = await signedUp.json() as { id: string }
  const login = await postJson(`${first.base}/api/auth/login`, { email: reader.email, password: reader.password })
  const { access_token: token } = await login.json() as { access_token: string }
  const auth = { authorization: `Bearer ${token}` }
  const admin = await adminAuth(first.base)

  const outcomes: Outcome[] = []
  const gone = { value: false }
  // Each worker goes on until the server is gone: its requests are refused, as a closed port does.
  const worker = async (request: () => Promise<Outcome>): Promise<void> => {
    for (let refused = 0; refused < 3;) {
      const outcome = await request()
      if (outcome.error === 'ECONNREFUSED') refused++
      else if (outcome.error !== undefined) await sleep(5)
      if (gone.value) refused = 3
    }
  }
  const signups = Array.from({ length: 6 }, async () => await worker(async () => {
    const fields = newUser()
    return await attempt(outcomes, 'signup', `${first.base}/api/users`, { method: 'POST', headers: json, body: JSON.stringify(fields) }, { email: fields.email })
  }))
  const reads = Array.from({ length: 6 }, async (_, i) => await worker(async () => {
    // Not the probes: the server does not log those, and its log is the record of what it received.
    const path = ['/api/auth/me', `/api/users/${readerId}`, '/api/users?limit=5'][i % 3] as string
    return await attempt(outcomes, 'read', `${first.base}${path}`, { headers: path.includes('limit') ? admin : auth })
  }))
  // Real load first: wait until a good number of signups have been answered.
  await until(() => outcomes.filter((o) => o.status === 201).length >= 20)
  first.child.kill('SIGTERM')
  const { code, stdout } = await first.exited
  // Any worker still going now meets a closed port at once.
  gone.value = true
  await Promise.all([...signups, ...reads])
  t.equal(code, 0, 'the server exits 0')

  const received = new Set([...stdout.matchAll(/"reqId":"((?:signup|read)-[0-9a-f-]+)"[^\n]*"msg":"incoming request"/g)].map((m) => m[1]))
  const failed = outcomes.filter((o) => o.complete !== true)
  t.ok(received.size > 50, `the server received a real load (${received.size} requests)`)
  t.same(outcomes.filter((o) => received.has(o.id) && o.complete !== true), [], 'every request the server received got a complete answer')
  t.same(outcomes.filter((o) => o.complete === true && !received.has(o.id)), [], 'every answer came from a request the server logged (the log is the record)')
  t.same(outcomes.filter((o) => o.complete === true && o.status !== 200 && o.status !== 201), [], 'every answer was a success')
  t.ok(failed.every((o) => o.error !== undefined), 'requests that got no answer failed at the connection')
  t.comment(`SIGTERM under load: ${outcomes.length} requests, ${received.size} received by the server and answered; the rest never reached it: ${tally(failed)}; answered: ${tally(outcomes.filter((o) => o.complete === true))}`)

  const second = await start(t, database)
  const created = outcomes.filter((o) => o.status === 201).map((o) => o.email as string)
  const stored = await allEmails(second.base)
  t.same(created.filter((email) => !stored.has(email)), [], `all ${created.length} signups answered 201 are stored`)
  const attempted = new Set(outcomes.filter((o) => o.kind === 'signup').map((o) => o.email))
  t.same([...stored].filter((email) => attempted.has(email) && !created.includes(email)), [], 'no signup that went unanswered was stored')
  second.child.kill('SIGTERM')
  t.equal((await second.exited).code, 0)
})

t.test('SIGKILL under a load of signups and password changes loses no acknowledged write; a new server on the same database serves', async (t) => {
  const database = await durableDatabase(t)
  const first = await start(t, database)
  const outcomes: Outcome[] = []

  // Users who change their password again and again, each change acknowledged (200) or not.
  const changers = await Promise.all(Array.from({ length: 3 }, async () => {
    const fields = newUser()
    const res = await postJson(`${first.base}/api/users`, fields)
    const { id } = await res.json() as { id: string }
    const login = await postJson(`${first.base}/api/auth/login`, { email: fields.email, password: fields.password })
    const { access_token: token } = await login.json() as { access_token: string }
    return { ...fields, id, token, acknowledged: fields.password, pending: undefined as string | undefined }
  }))

  const killed = { value: false }
  const signups = Array.from({ length: 6 }, async () => {
    while (!killed.value) {
      const fields = newUser()
      await attempt(outcomes, 'signup', `${first.base}/api/users`, { method: 'POST', headers: json, body: JSON.stringify(fields) }, { email: fields.email })
    }
  })
  const changes = changers.map(async (user) => {
    for (let n = 1; !killed.value; n++) {
      const password = `changed-${n}-${randomUUID()}`
      const outcome = await attempt(outcomes, 'password', `${first.base}/api/users/${user.id}`, {
        method: 'PATCH',
        headers: { ...json, authorization: `Bearer ${user.token}` },
        body: JSON.stringify({ password, current_password: user.acknowledged })
      }, { password })
      if (outcome.status === 200) {
        user.acknowledged = password
      } else {
        // Killed mid-change: the change may or may not have been committed, and this user stops here.
        user.pending = password
        return
      }
    }
  })
  await until(() => outcomes.filter((o) => o.status === 201).length >= 20 && outcomes.filter((o) => o.kind === 'password' && o.status === 200).length >= 3)
  first.child.kill('SIGKILL')
  killed.value = true
  const { code, stdout: before } = await first.exited
  await Promise.all([...signups, ...changes])
  t.equal(code, null, 'the server was killed')
  t.comment(`SIGKILL under load: ${tally(outcomes)}`)
  t.ok(outcomes.some((o) => o.error !== undefined), 'the kill cut requests short')
  t.notOk(outcomes.some((o) => o.status !== undefined && o.status >= 500), 'no 5xx before the kill')

  const second = await start(t, database)
  const created = outcomes.filter((o) => o.status === 201).map((o) => o.email as string)
  const stored = await storedEmails(second.base, created)
  t.same(created.filter((email) => !stored.has(email)), [], `all ${created.length} signups answered 201 survived the kill`)
  for (const user of changers) {
    const acknowledged = await postJson(`${second.base}/api/auth/login`, { email: user.email, password: user.acknowledged })
    if (acknowledged.status === 200) {
      t.pass('the last acknowledged password change survived the kill')
      continue
    }
    // Only an unacknowledged later change, committed just before the kill, may have replaced it.
    t.ok(user.pending, 'the acknowledged password only fails when a later change was in flight')
    const pending = await postJson(`${second.base}/api/auth/login`, { email: user.email, password: user.pending })
    t.equal(pending.status, 200, 'then that change was committed whole')
  }

  // Migrations ran again at start-up and found nothing to do: the first start logged each one.
  const { stdout: after } = await (async () => {
    t.equal((await fetch(`${second.base}/health/ready`)).status, 200, 'the new server is ready')
    const fields = newUser()
    t.equal((await postJson(`${second.base}/api/users`, fields)).status, 201, 'and takes signups')
    t.equal((await postJson(`${second.base}/api/auth/login`, { email: fields.email, password: fields.password })).status, 200, 'and logins')
    second.child.kill('SIGTERM')
    return await second.exited
  })()
  t.match(before, /"migration":"0001-create-users","status":"Success"/, 'the first server migrated the new database')
  t.notMatch(after, /"msg":"migration"/, 'the second found every migration applied: no migration ran twice')
  t.match(after, /"msg":"database ready"/)
})

t.test('a fault while a password change ends the sessions undoes the change: never a new password with the old sessions', async (t) => {
  const app = await build(t)
  const ada = await signUp(app)
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: ada.password } })
  const { refresh_token: refreshToken } = login.json<{ refresh_token: string }>()
  // A stand-in for the process dying or the connection dropping after the password was written:
  // ending the sessions fails.
  await sql`create function gatehouse_test_fail() returns trigger language plpgsql as $$ begin raise exception 'injected fault'; end $$`.execute(app.database.db)
  await sql`create trigger gatehouse_test_fail before update on refresh_tokens for each row execute function gatehouse_test_fail()`.execute(app.database.db)
  const change = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: ada.auth, payload: { password: 'a-brand-new-password', current_password: ada.password } })
  t.equal(change.statusCode, 500, 'the change is reported as failed')
  await sql`drop trigger gatehouse_test_fail on refresh_tokens`.execute(app.database.db)

  const withOld = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: ada.password } })
  t.equal(withOld.statusCode, 200, 'the old password still works: the change was rolled back')
  const withNew = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: ada.email, password: 'a-brand-new-password' } })
  t.equal(withNew.statusCode, 401, 'the new one does not')
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: refreshToken } })).statusCode, 200, 'and the session is intact, as it should be with the old password')

  const again = await app.inject({ method: 'PATCH', url: `/api/users/${ada.id}`, headers: ada.auth, payload: { password: 'a-brand-new-password', current_password: ada.password } })
  t.equal(again.statusCode, 200, 'without the fault the change succeeds')
  t.equal((await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: refreshToken } })).statusCode, 401, 'and ends the session')
})
