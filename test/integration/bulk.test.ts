import type { FastifyInstance } from 'fastify'
import { CompiledQuery, sql } from 'kysely'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { ADMIN, ADMIN_ENV, assertProblem, build, loginToken, signUp } from '../helper.js'

const MISSING_ID = '01a21226-ca21-7191-8cfb-01f1e5441dc5'
const USER_KEYS = ['created_at', 'email', 'id', 'role', 'updated_at', 'username']
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

interface UserJson { id: string, email: string, username: string, role: string, created_at: string, updated_at: string }

/**
 * Records every query the app's Kysely instance sends, from the executor that every query builder
 * of that instance (the repository's included) runs through: a count here is a count of round trips.
 */
function recordQueries (t: Test, app: FastifyInstance): CompiledQuery[] {
  const executor = app.database.db.getExecutor()
  const original = executor.executeQuery.bind(executor)
  const seen: CompiledQuery[] = []
  executor.executeQuery = async (query) => {
    seen.push(query)
    return await original(query)
  }
  t.teardown(() => { executor.executeQuery = original })
  return seen
}

/** `count` plain users straight into the table (a multi-row insert per 500), three to a created_at so ties cross batch edges. */
async function seedUsers (app: FastifyInstance, count: number): Promise<void> {
  const base = Date.UTC(2031, 0, 1)
  const tag = uuidv7().slice(-8)
  const rows = Array.from({ length: count }, (_, i) => ({
    id: uuidv7(),
    email: `seed${i}-${tag}@example.com`,
    username: `seed_${tag}_${i}`,
    password_hash: 'not-a-hash',
    role: 'user' as const,
    created_at: new Date(base + Math.floor(i / 3))
  }))
  for (let i = 0; i < rows.length; i += 500) {
    await app.database.db.insertInto('users').values(rows.slice(i, i + 500)).execute()
  }
}

const userCount = async (app: FastifyInstance): Promise<number> =>
  Number((await sql<{ n: string }>`select count(*) as n from users`.execute(app.database.db)).rows[0]?.n)

t.test('bulk user reads', async (t) => {
  // Seeding and exporting thousands of rows keeps this process busy enough to trip the default
  // event-loop load shedding, which would answer 503 to the request under test.
  const app = await build(t, { env: { ...ADMIN_ENV, LOAD_SHED_EVENT_LOOP_UTILIZATION: '0', LOAD_SHED_EVENT_LOOP_DELAY_MS: '0' } })
  const admin = { authorization: `Bearer ${await loginToken(app, ADMIN.email, ADMIN.password)}` }
  const ada = await signUp(app)

  t.test('the OpenAPI document describes the export as NDJSON of Users, and the lookup\'s limits', async (t) => {
    const doc = (await app.inject({ url: '/openapi.json' })).json()
    const exported = doc.paths['/api/users/export'].get
    t.equal(exported.operationId, 'exportUsers')
    t.same(Object.keys(exported.responses['200'].content), ['application/x-ndjson'])
    t.same(exported.responses['200'].content['application/x-ndjson'].schema, { $ref: '#/components/schemas/User' }, 'each line is a User')
    const lookup = doc.paths['/api/users/lookup'].post
    t.equal(lookup.operationId, 'lookupUsers')
    t.match(lookup.requestBody.content['application/json'].schema.properties.ids, { minItems: 1, maxItems: 100, uniqueItems: true })
    t.ok(doc.paths['/api/users'].get.parameters.some((p: { in: string, name: string }) => p.in === 'query' && p.name === 'email'), 'list documents ?email=')
  })

  t.test('POST /api/users/lookup', async (t) => {
    const people = [await signUp(app), await signUp(app), await signUp(app)]
    const [a, b, c] = people.map((p) => p.id) as [string, string, string]
    const lookup = async (ids: unknown, headers = admin) => await app.inject({ method: 'POST', url: '/api/users/lookup', headers, payload: { ids } })

    t.test('gives the users found in the order asked, and the missing ids in the order asked', async (t) => {
      const missing2 = uuidv7()
      const res = await lookup([c, MISSING_ID, a, missing2, b])
      t.equal(res.statusCode, 200)
      const body = res.json<{ data: UserJson[], not_found: string[] }>()
      t.same(body.data.map((u) => u.id), [c, a, b])
      t.same(body.not_found, [MISSING_ID, missing2])
      t.match(body.data[0], { id: c, email: people[2]?.email, username: people[2]?.username, role: 'user' })
      t.same(Object.keys(body.data[0] ?? {}).sort(), USER_KEYS)
      t.notMatch(res.body, /password/)
    })

    t.test('each user found is exactly what GET /api/users/:id answers for it, timestamps included', async (t) => {
      // The lookup prints timestamps in SQL, the single read from a JS Date: both must give the same text.
      await sql`update users set created_at = '2025-06-07 08:09:10.123999+00', updated_at = '2026-01-02 03:04:05.999999+00' where id = ${b}`.execute(app.database.db)
      const res = await lookup([a, b, c])
      const found = res.json<{ data: UserJson[] }>().data
      for (const [i, id] of [a, b, c].entries()) {
        t.same(found[i], (await app.inject({ url: `/api/users/${id}`, headers: admin })).json(), `user ${id}`)
      }
      t.match(found[1], { created_at: '2025-06-07T08:09:10.123Z', updated_at: '2026-01-02T03:04:05.999Z' }, 'microseconds are cut, as a Date does')
    })

    t.test('answers 100 ids with exactly one database query', async (t) => {
      const ids = [a, b, c, ...Array.from({ length: 97 }, () => uuidv7())]
      const queries = recordQueries(t, app)
      const res = await lookup(ids)
      t.equal(res.statusCode, 200)
      t.equal(res.json().data.length, 3)
      t.equal(res.json().not_found.length, 97)
      t.equal(queries.length, 1, 'one query, not one per id')
      t.match(queries[0]?.sql, /"id" = any\(\$1::uuid\[\]\)/)
      t.same(queries[0]?.parameters, [ids], 'the ids go as one array parameter')
    })

    t.test('is for admins only', async (t) => {
      assertProblem(t, await lookup([ada.id], ada.auth), 403, 'FORBIDDEN')
      assertProblem(t, await app.inject({ method: 'POST', url: '/api/users/lookup', payload: { ids: [ada.id] } }), 401, 'UNAUTHORIZED')
    })

    t.test('needs 1-100 distinct uuids and nothing else', async (t) => {
      const hundredAndOne = Array.from({ length: 101 }, () => uuidv7())
      for (const ids of [[], hundredAndOne, [a, a], ['not-a-uuid'], [`urn:uuid:${a}`], [42], 'a'] as unknown[]) {
        const body = assertProblem(t, await lookup(ids), 400, 'VALIDATION_FAILED')
        t.match(body.errors, [{ in: 'body' }], `${JSON.stringify(ids).slice(0, 40)} is refused`)
      }
      const extra = await app.inject({ method: 'POST', url: '/api/users/lookup', headers: admin, payload: { ids: [a], limit: 5 } })
      assertProblem(t, extra, 400, 'VALIDATION_FAILED')
    })
  })

  t.test('GET /api/users?email=', async (t) => {
    t.test('finds the user with that address, however it is cased or padded', async (t) => {
      const res = await app.inject({ url: '/api/users', query: { email: `  ${ada.email.toUpperCase()} ` }, headers: admin })
      t.equal(res.statusCode, 200)
      t.match(res.json(), { data: [{ id: ada.id, email: ada.email }], next_cursor: null })
      t.equal(res.json().data.length, 1)
    })

    t.test('gives an empty page for an address no one has, whatever limit and cursor say', async (t) => {
      const res = await app.inject({ url: '/api/users', query: { email: 'nobody-at-all@example.com', limit: '5', cursor: 'ignored' }, headers: admin })
      t.equal(res.statusCode, 200)
      t.same(res.json(), { data: [], next_cursor: null })
    })

    t.test('a malformed address is 400 INVALID_EMAIL', async (t) => {
      for (const email of ['not-an-email', 'x', '', 'a@b']) {
        assertProblem(t, await app.inject({ url: '/api/users', query: { email }, headers: admin }), 400, 'INVALID_EMAIL')
      }
    })

    t.test('is for admins only, so nobody else can learn whether an address has an account', async (t) => {
      assertProblem(t, await app.inject({ url: '/api/users', query: { email: ada.email }, headers: ada.auth }), 403, 'FORBIDDEN')
    })
  })

  t.test('GET /api/users/export', async (t) => {
    // Enough for several batches of 1000, with created_at ties across the batch edges.
    await seedUsers(app, 3500)

    t.test('streams every user as one JSON line each, newest first', async (t) => {
      const res = await app.inject({ url: '/api/users/export', headers: admin })
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^application\/x-ndjson/)
      t.equal(res.headers['cache-control'], 'no-store')
      t.ok(res.body.endsWith('\n'), 'every line ends with a newline')
      const lines = res.body.slice(0, -1).split('\n')
      t.equal(lines.length, await userCount(app), 'one line per user')
      const users = lines.map((line) => JSON.parse(line) as UserJson)
      t.notOk(users.some((u) => Object.keys(u).sort().join() !== USER_KEYS.join()), 'each line has exactly the fields of a User')
      t.notMatch(res.body, /password|not-a-hash/, 'no password hashes')
      t.notOk(users.some((u) => !ISO_8601.test(u.created_at) || !ISO_8601.test(u.updated_at)), 'dates are ISO 8601')
      t.equal(new Set(users.map((u) => u.id)).size, users.length, 'no user twice')
      const sorted = [...users].sort((x, y) => y.created_at.localeCompare(x.created_at) || y.id.localeCompare(x.id))
      t.ok(users.every((u, i) => u.id === sorted[i]?.id), 'newest first, ties broken by id')
      t.ok(users.some((u) => u.id === ada.id), 'signed-up users are there too')
    })

    t.test('a line is exactly what GET /api/users/:id answers for that user, timestamps included', async (t) => {
      // The export prints timestamps in SQL, the other routes from a JS Date: both must give the same text.
      await app.database.db.updateTable('users').set({ updated_at: new Date('2026-01-02T03:04:05.999Z') }).where('id', '=', ada.id).execute()
      await sql`update users set created_at = '2025-06-07 08:09:10.123999+00' where id = ${ada.id}`.execute(app.database.db)
      const lines = (await app.inject({ url: '/api/users/export', headers: admin })).body.slice(0, -1).split('\n')
      const byId = new Map(lines.map((line) => [(JSON.parse(line) as UserJson).id, line]))
      const sample = [ada.id, ...[...byId.keys()].filter((_, i) => i % 500 === 0)]
      for (const id of sample) {
        const one = await app.inject({ url: `/api/users/${id}`, headers: admin })
        t.equal(byId.get(id), one.body, `user ${id}`)
      }
      t.match(byId.get(ada.id), /"created_at":"2025-06-07T08:09:10\.123Z","updated_at":"2026-01-02T03:04:05\.999Z"/, 'microseconds are cut, as a Date does')
    })

    t.test('reads in keyset batches of 1000, through the (created_at, id) index', async (t) => {
      const count = await userCount(app)
      const queries = recordQueries(t, app)
      const res = await app.inject({ url: '/api/users/export', headers: admin })
      t.equal(res.statusCode, 200)
      t.equal(queries.length, Math.ceil(count / 1000), 'one query per batch')
      t.ok(queries.every((q) => / limit \$\d+$/.test(q.sql) && q.parameters.at(-1) === 1001), 'each reads one batch (and one row to see if more follow)')
      // On a table this small the planner may rightly scan it; forbid that to see the index is usable.
      const plans: string[] = []
      for (const query of queries) {
        const plan = await app.database.db.transaction().execute(async (tx) => {
          await sql`set local enable_seqscan = off`.execute(tx)
          return await tx.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]))
        })
        plans.push(plan.rows.map((r) => r['QUERY PLAN']).join('\n'))
      }
      t.match(plans[0], /^Limit.*\n\s*-> {2}Index Scan using users_created_at_id_idx/, 'the first batch reads the index in order: no sort')
      // Later batches' cursors are index conditions too. The planner may fetch a batch as a bitmap of
      // index entries and sort it when it expects few rows left (no statistics yet), which is as cheap.
      const later = plans.slice(1)
      t.ok(later.length > 1 && later.every((p) => /users_created_at_id_idx[^]*Index Cond: \(ROW\(created_at, id\) < ROW/.test(p)), 'every later batch seeks into the index by its cursor')
    })

    t.test('is for admins only', async (t) => {
      assertProblem(t, await app.inject({ url: '/api/users/export', headers: ada.auth }), 403, 'FORBIDDEN')
      assertProblem(t, await app.inject({ url: '/api/users/export' }), 401, 'UNAUTHORIZED')
    })

    t.test('a failure before the first line is an ordinary problem+json answer', async (t) => {
      const listPublic = app.userRepository.listPublic
      t.teardown(() => { app.userRepository.listPublic = listPublic })
      app.userRepository.listPublic = async () => { throw new Error('boom') }
      assertProblem(t, await app.inject({ url: '/api/users/export', headers: admin }), 500, 'INTERNAL_ERROR')
    })

    t.test('a client that disconnects stops the export: no batch is read after it goes', async (t) => {
      // The second batch waits until the client has gone; then the export must read no third.
      const listPublic = app.userRepository.listPublic
      t.teardown(() => { app.userRepository.listPublic = listPublic })
      let calls = 0
      let openGate!: () => void
      const gate = new Promise<void>((resolve) => { openGate = resolve })
      app.userRepository.listPublic = async (limit, after) => {
        calls++
        if (calls === 2) await gate
        return await listPublic(limit, after)
      }

      await app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = app.server.address() as AddressInfo
      const req = http.get({ host: '127.0.0.1', port, path: '/api/users/export', headers: admin, agent: false })
      const [res] = await once(req, 'response') as [http.IncomingMessage]
      t.equal(res.statusCode, 200)
      await once(res, 'data')
      req.destroy()

      for (let waited = 0; waited < 5000; waited += 20) {
        const open = await new Promise<number>((resolve) => { app.server.getConnections((_err, n) => { resolve(n) }) })
        if (open === 0) break
        await delay(20)
      }
      openGate()
      await delay(300)
      t.equal(calls, 2, 'the batch in flight when the client left was the last one read')
      t.ok(await userCount(app) > 3000, 'while more than three batches were there to read')
    })
  })
})
