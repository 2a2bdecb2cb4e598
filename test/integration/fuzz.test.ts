/**
 * Schema-driven fuzzing (issue 8): requests generated from the service's own OpenAPI document
 * (test/fuzz/requests.ts) for every operation, each sent with no token, a user's token, an admin's
 * token and a forged or garbage one; in process through inject() and over HTTP to a real server
 * process. For every answer: no 5xx; every 4xx is application/problem+json with a code the source
 * defines; the answer matches the document for that operation and status; no password hash leaks;
 * a rejected request changed nothing in the database (users and refresh_tokens, compared by row
 * count and md5 of the ordered rows after every request; over HTTP on PGlite, whose database lives
 * inside the server process, what the admin export and the sessions listings show instead);
 * Object.prototype is not polluted; and the server process is still up and serving at the end.
 *
 * CI runs a fixed seed and few runs. Environment:
 *   FUZZ_SEED       the seed (default 8008); `random` picks one, printed in the test output
 *   FUZZ_RUNS       requests per operation and kind of token, in process (default 20)
 *   FUZZ_HTTP_RUNS  the same, over HTTP to the server process (default 4)
 * A longer run:
 *   FUZZ_RUNS=5000 FUZZ_HTTP_RUNS=500 FUZZ_SEED=random npx tap --disable-coverage --timeout=0 test/integration/fuzz.test.ts
 * A failure prints the seed, fast-check's path and the counterexample request (method, URL,
 * headers and the exact body); FUZZ_SEED=<seed> replays the same run.
 */
import fc from 'fast-check'
import { sql } from 'kysely'
import { Agent, request as httpRequest } from 'node:http'
import pg from 'pg'
import t, { type Test } from 'tap'
import { HANDLER_PROBLEM_CODES } from '../../plugins/errors.js'
import * as domainErrors from '../../services/errors.js'
import { ContractChecker, type Answer, type OpenApiDocument } from '../contract.js'
import {
  AUTH_KINDS, describe, forgedAuthorizations, operationsOf, requestArbitrary,
  type Document, type FuzzContext, type FuzzRequest, type Operation
} from '../fuzz/requests.js'
import { ADMIN, ADMIN_ENV, assertProblem, backend, build, signUp, testConfig } from '../helper.js'
import { startServer } from '../processes.js'

const DEFAULT_SEED = 8008
const SEED = process.env.FUZZ_SEED === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED ?? DEFAULT_SEED)
const RUNS = Number(process.env.FUZZ_RUNS ?? 20)
const HTTP_RUNS = Number(process.env.FUZZ_HTTP_RUNS ?? 4)
t.comment(`fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} FUZZ_HTTP_RUNS=${HTTP_RUNS} backend=${backend}`)

/** Every code a problem may carry: the domain errors' (each class asked) and the error handler's own. */
const domainCodes = (Object.values(domainErrors) as unknown[])
  .filter((value): value is new () => domainErrors.DomainError => typeof value === 'function' && value.prototype instanceof domainErrors.DomainError)
  .map((DomainErrorClass) => new DomainErrorClass().code)
const KNOWN_CODES = new Set([...HANDLER_PROBLEM_CODES, ...domainCodes])

/** The codes the document lists for clients, in the Problem schema's description of `code`. */
function documentedCodes (doc: Document): Set<string> {
  const description = String(doc.components?.schemas?.Problem?.properties?.code?.description)
  return new Set(description.replace(/^[^:]*:/, '').split(',').map((code) => code.trim()))
}

/**
 * Whether a pollution key survives parsing the body the way the server does (JSON.parse, the last of
 * duplicate keys winning). One inside a value that a later duplicate key replaced never reaches anything.
 */
function survivingPrototypeKey (body: string | Buffer): boolean {
  let found = false
  try {
    JSON.parse(body.toString(), function (key, value: unknown) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') found = true
      return value
    })
  } catch {
    return false
  }
  return found
}
const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort().join()
const pollutionFree = (): boolean =>
  (({}) as Record<string, unknown>).polluted === undefined && Object.getOwnPropertyNames(Object.prototype).sort().join() === prototypeKeys

/** Tallies for the report, and for the assertion that every operation and kind of token was fuzzed. */
class Stats {
  readonly requests = new Map<string, number>()
  readonly kinds = new Map<string, number>()
  readonly statuses = new Map<number, number>()
  rejected = 0
  total = 0
  record (req: FuzzRequest, status: number): void {
    const bump = <K>(map: Map<K, number>, key: K): void => { map.set(key, (map.get(key) ?? 0) + 1) }
    bump(this.requests, `${req.operationId}/${req.auth}`)
    bump(this.kinds, req.kind)
    bump(this.statuses, status)
    // 0: a connection dropped while an oversized body was sent (see DROPPED).
    if (status >= 300 || status === 0) this.rejected++
    this.total++
  }

  summary (): string {
    const sorted = <K>(map: Map<K, number>): string => [...map].sort(([a], [b]) => String(a).localeCompare(String(b))).map(([k, v]) => `${String(k)}=${v}`).join(' ')
    return `${this.total} requests (${this.rejected} rejected)\n  statuses: ${sorted(this.statuses)}\n  kinds: ${sorted(this.kinds)}`
  }
}

/** What is wrong with one answer, if anything (empty when it is fine). */
function faults (contract: ContractChecker, req: FuzzRequest, res: Answer, operation: Operation): string[] {
  const found: string[] = []
  const status = res.statusCode
  if (status >= 500) found.push(`status ${status}`)
  if (status >= 400) {
    const type = String(res.headers['content-type'])
    if (!type.startsWith('application/problem+json')) found.push(`a ${status} answered as ${type}, not application/problem+json`)
    let problem: { code?: unknown, status?: unknown } = {}
    try {
      problem = JSON.parse(res.body) as typeof problem
    } catch {
      found.push('an error body that is not JSON')
    }
    if (!KNOWN_CODES.has(String(problem.code))) found.push(`code ${String(problem.code)} is not one the service defines`)
    if (problem.status !== status) found.push(`body status ${String(problem.status)} is not the HTTP status ${status}`)
  }
  // Every body schema refuses unknown fields, so a pollution key can never be accepted.
  if (status < 300 && operation.body !== undefined && req.body !== undefined && survivingPrototypeKey(req.body)) found.push('a body with a prototype key was accepted')
  if (res.body.includes('$argon2')) found.push('a password hash in the answer')
  const before = contract.violations.length
  contract.check(req.method, req.url, res)
  for (const v of contract.violations.slice(before)) found.push(`contract: ${v.problem}`)
  contract.violations.length = before
  return found
}

interface Target {
  send: (req: FuzzRequest) => Promise<Answer>
  /** The database's users and refresh_tokens, as one comparable string. */
  snapshot: () => Promise<string>
  /** Extra checks after each request (in process: Object.prototype). */
  after?: () => string[]
}

/** The status recorded for a connection the server closed while a body over BODY_LIMIT was still being sent. */
const DROPPED = 0

/** Fuzzes every operation with every kind of token; a failing property is reported, and the others still run. */
async function fuzzAll (t: Test, ctx: FuzzContext, operations: Operation[], target: Target, runs: number, stats: Stats): Promise<void> {
  const contract = new ContractChecker(ctx.doc as unknown as OpenApiDocument)
  let baseline = await target.snapshot()
  for (const [i, operation] of operations.entries()) {
    for (const [j, auth] of AUTH_KINDS.entries()) {
      // One seed per operation and kind of token, all derived from FUZZ_SEED.
      const seed = (SEED + i * AUTH_KINDS.length + j) | 0
      const property = fc.asyncProperty(requestArbitrary(ctx, operation, auth), async (req) => {
        const res = await target.send(req)
        stats.record(req, res.statusCode)
        // A connection dropped while a body over the limit was still being sent: allowed, no answer to check.
        const found = res.statusCode === DROPPED ? [] : faults(contract, req, res, operation)
        const now = await target.snapshot()
        if ((res.statusCode >= 300 || res.statusCode === DROPPED) && now !== baseline) found.push('the database changed for a rejected request')
        baseline = now
        found.push(...target.after?.() ?? [])
        if (found.length > 0) {
          throw new Error(`${found.join('; ')}\n  request: ${describe(req)}\n  answer: ${res.statusCode} ${String(res.headers['content-type'])} ${res.body.slice(0, 400)}`)
        }
      })
      try {
        await fc.assert(property, { seed, numRuns: runs, includeErrorInReport: true })
      } catch (err) {
        t.fail(`${operation.operationId} with auth=${auth} (replay: FUZZ_SEED=${SEED})\n${(err as Error).message}`)
      }
    }
  }
}

/** Every operation with every kind of token got requests. */
function assertCovered (t: Test, stats: Stats, operations: Operation[], runs: number): void {
  const short = operations.flatMap((o) => AUTH_KINDS.map((a) => `${o.operationId}/${a}`)).filter((key) => (stats.requests.get(key) ?? 0) < runs)
  t.same(short, [], `every operation was fuzzed ${runs}+ times with each kind of token`)
}

/** The fuzz's own user is never a DELETE target, so that later operations keep a live user to act as. */
async function contextFor (doc: Document, tokens: { user: string, admin: string }, victims: Array<FuzzContext['credentials'][number] & { id: string }>, self: { id: string, secret: string }, bodyLimit: number): Promise<FuzzContext> {
  return {
    doc,
    knownIds: [self.id, ...victims.map((v) => v.id)],
    protectedIds: [self.id],
    credentials: victims,
    tokens,
    forged: forgedAuthorizations({ secret: self.secret, issuer: 'gatehouse', audience: 'gatehouse', userToken: tokens.user, userId: self.id }),
    bodyLimit
  }
}

t.test('in process, on one app', async (t) => {
  const app = await build(t, { env: ADMIN_ENV })

  t.test('the fuzzer covers every operation of the document, and knows every code the service defines', async (t) => {
    const served = (await app.inject({ url: '/openapi.json' })).json<Document>()
    const operations = operationsOf(served)
    t.same(operations.map((o) => `${o.method} ${o.path}`).sort(),
      Object.entries(served.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)).sort(),
      'every operation in the document is one the fuzzer generates requests for')
    t.ok(operations.length >= 18, `${operations.length} operations`)
    // An operation the generators cannot handle fails here (and in the fuzz tests), rather than going unfuzzed.
    const withQuery = (parameter: object): Document => ({ paths: { '/x': { get: { operationId: 'x', parameters: [parameter as never] } } } })
    t.throws(() => operationsOf(withQuery({ name: 'h', in: 'header', schema: { type: 'string' } })), { name: 'UnsupportedError' })
    t.throws(() => operationsOf(withQuery({ name: 'q', in: 'query', schema: { type: 'string', not: { const: 'x' } } })), { name: 'UnsupportedError' })
    t.throws(() => operationsOf({ paths: { '/x': { post: { operationId: 'x', requestBody: { content: { 'application/xml': { schema: { type: 'object' } } } } } } } }), { name: 'UnsupportedError' })

    t.same([...KNOWN_CODES].sort(), [...documentedCodes(served)].sort(), 'the codes the source defines are exactly those the document lists')
    t.ok(domainCodes.includes('INVALID_REFRESH_TOKEN') && HANDLER_PROBLEM_CODES.includes('MALFORMED_JSON'), 'both sources were read')
  })

  t.test('the pollution canary works: a polluted Object.prototype makes every body route refuse valid input', async (t) => {
    // The server-process fuzz cannot look inside the process; it relies on this behaviour instead.
    const login = async (): Promise<number> => (await app.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN })).statusCode
    t.equal(await login(), 200)
    // eslint-disable-next-line no-extend-native -- the point of this test: pollution, on purpose, undone below
    Object.defineProperty(Object.prototype, 'polluted', { value: 1, enumerable: true, configurable: true, writable: true })
    try {
      t.equal(await login(), 400, 'refused: the polluted key looks like an unknown field')
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted
    }
    t.equal(await login(), 200)
  })

  t.test('regressions the fuzzer found: each is now a 4xx problem the document names', async (t) => {
    const contract = new ContractChecker((await app.inject({ url: '/openapi.json' })).json<OpenApiDocument>(), app)
    const user = await signUp(app)
    const admin = { authorization: `Bearer ${(await app.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN })).json<{ access_token: string }>().access_token}` }
    const uuid = '0190b6c8-0e6b-7cc1-a8f6-2e9f2c4a5b6d'

    t.test('a path that is not validly percent-encoded, or a path parameter past maxParamLength (was Fastify\'s plain JSON FST_ERR_BAD_URL 400 and FST_ERR_MAX_PARAM_LENGTH 414)', async (t) => {
      for (const [method, url] of [['GET', '/api/users/%zz'], ['PATCH', '/api/users/%E0%A4%A'], ['GET', `/api/users/${'a'.repeat(101)}`], ['DELETE', `/api/auth/sessions/${'0'.repeat(200)}`]] as const) {
        const res = await contract.inject({ method, url, headers: user.auth })
        assertProblem(t, res, 400, 'BAD_REQUEST')
        t.ok(res.headers['x-request-id'], 'with a request id')
      }
    })

    t.test('a urn:uuid: session id (was a 500: format uuid admits it, PostgreSQL\'s uuid type does not)', async (t) => {
      assertProblem(t, await contract.inject({ method: 'DELETE', url: `/api/auth/sessions/urn:uuid:${uuid}`, headers: user.auth }), 400, 'VALIDATION_FAILED')
    })

    t.test('a cursor of the right shape naming a time that does not exist (was a 500 from PostgreSQL)', async (t) => {
      for (const time of ['0000-00-00T00:00:00.000000Z', '2024-13-45T25:61:61.000000Z', '2023-02-29T00:00:00.000000Z']) {
        const cursor = Buffer.from(JSON.stringify([time, uuid])).toString('base64url')
        assertProblem(t, await contract.inject({ method: 'GET', url: `/api/users?cursor=${cursor}`, headers: admin }), 400, 'INVALID_CURSOR')
      }
    })

    t.test('a body sent to an operation that takes none: 415 or 400, now documented for it (was undocumented)', async (t) => {
      const sent = { payload: 'x', headers: { ...user.auth, 'content-type': 'text/plain' } }
      assertProblem(t, await contract.inject({ method: 'POST', url: '/api/auth/logout-all', ...sent }), 415, 'UNSUPPORTED_MEDIA_TYPE')
      assertProblem(t, await contract.inject({ method: 'DELETE', url: `/api/users/${uuid}`, ...sent }), 415, 'UNSUPPORTED_MEDIA_TYPE')
      assertProblem(t, await contract.inject({ method: 'DELETE', url: `/api/auth/sessions/${uuid}`, ...sent }), 415, 'UNSUPPORTED_MEDIA_TYPE')
      const malformed = { payload: '{', headers: { ...user.auth, 'content-type': 'application/json' } }
      assertProblem(t, await contract.inject({ method: 'POST', url: '/api/auth/logout-all', ...malformed }), 400, 'MALFORMED_JSON')
      const huge = { payload: JSON.stringify({ x: 'x'.repeat(20_000) }), headers: { ...user.auth, 'content-type': 'application/json' } }
      assertProblem(t, await contract.inject({ method: 'DELETE', url: `/api/auth/sessions/${uuid}`, ...huge }), 413, 'PAYLOAD_TOO_LARGE')
    })

    t.test('the answers above are all as documented', async (t) => {
      t.same(contract.violations, [])
    })
  })

  t.test('in process: every operation, every kind of token, hostile input', async (t) => {
    const config = testConfig(ADMIN_ENV)
    const doc = (await app.inject({ url: '/openapi.json' })).json<Document>()
    t.same(doc, app.swagger(), 'the document served is the one the app generates')
    const operations = operationsOf(doc)
    const user = await signUp(app)
    const victims = await Promise.all([0, 1, 2, 3, 4, 5].map(async () => await signUp(app)))
    const adminLogin = await app.inject({ method: 'POST', url: '/api/auth/login', payload: ADMIN })
    const admin = adminLogin.json<{ access_token: string }>().access_token
    const ctx = await contextFor(doc, { user: user.token, admin }, victims, { id: user.id, secret: config.jwt.secret }, config.bodyLimit)

    const db = app.database.db
    const target: Target = {
      send: async (req) => await app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.body !== undefined && { payload: req.body }) }),
      snapshot: async () => JSON.stringify((await sql`
        select (select count(*) from users)::int as users,
               (select md5(coalesce(string_agg(u::text, '|' order by u.id), '')) from users u) as users_md5,
               (select count(*) from refresh_tokens)::int as tokens,
               (select md5(coalesce(string_agg(r::text, '|' order by r.id), '')) from refresh_tokens r) as tokens_md5`.execute(db)).rows[0]),
      after: () => pollutionFree() ? [] : ['Object.prototype was polluted']
    }
    const stats = new Stats()
    await fuzzAll(t, ctx, operations, target, RUNS, stats)
    t.comment(`in process (${backend}): ${stats.summary()}`)
    assertCovered(t, stats, operations, RUNS)
    t.ok(stats.rejected > 0 && stats.rejected < stats.total, 'both accepted and rejected requests were sent')
    t.ok(pollutionFree(), 'Object.prototype is untouched')
    t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200, 'still ready')
  })
})

t.test('over HTTP, against the server process: every operation, every kind of token, hostile input', async (t) => {
  const secret = 'fuzz-process-secret-at-least-32-characters'
  const bodyLimit = 16_384
  const server = await startServer(t, {
    ...ADMIN_ENV,
    JWT_SECRET: secret,
    BODY_LIMIT: String(bodyLimit),
    SIGNUP_MAX_PER_IP: '1000000',
    LOGIN_MAX_FAILURES_PER_IP: '1000000'
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 4 })
  t.teardown(() => { agent.destroy() })
  const send = async (req: FuzzRequest): Promise<Answer> => await new Promise((resolve, reject) => {
    const length = req.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(req.body)) }
    const outgoing = httpRequest(`${server.base}${req.url}`, { method: req.method, headers: { ...req.headers, ...length }, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const rawPayload = Buffer.concat(chunks)
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, rawPayload, body: rawPayload.toString() })
      })
    })
    outgoing.on('error', (err: NodeJS.ErrnoException) => {
      // A server that answers 413 before reading a large body may close the socket while it is still being
      // sent; for a body over the limit, a dropped connection is an answer the issue allows.
      const oversized = req.body !== undefined && Buffer.byteLength(req.body) > bodyLimit
      if (oversized && (err.code === 'EPIPE' || err.code === 'ECONNRESET')) resolve({ statusCode: DROPPED, headers: {}, rawPayload: Buffer.alloc(0), body: '' })
      else reject(new Error(`${err.message}: ${describe(req)}`))
    })
    outgoing.setTimeout(15_000, () => { outgoing.destroy(new Error('no answer within 15 s')) })
    outgoing.end(req.body)
  })
  const json = (body: unknown): Pick<FuzzRequest, 'headers' | 'body'> => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const call = async (method: string, url: string, extra: Partial<FuzzRequest> = {}): Promise<Answer> =>
    await send({ operationId: 'setup', kind: 'setup', auth: 'none', method, url, headers: {}, ...extra })

  const doc = JSON.parse((await call('GET', '/openapi.json')).body) as Document
  const operations = operationsOf(doc)
  const signUpOver = async (n: number): Promise<{ id: string, email: string, username: string, password: string, token: string }> => {
    const fields = { email: `fuzz${n}@example.com`, username: `fuzz_${n}`, password: `correct horse battery ${n}` }
    const created = await call('POST', '/api/users', json(fields))
    const tokens = await call('POST', '/api/auth/login', json({ email: fields.email, password: fields.password }))
    if (created.statusCode !== 201 || tokens.statusCode !== 200) throw new Error(`setup failed: ${created.body} ${tokens.body}`)
    return { ...fields, id: (JSON.parse(created.body) as { id: string }).id, token: (JSON.parse(tokens.body) as { access_token: string }).access_token }
  }
  const user = await signUpOver(0)
  const victims = await Promise.all([1, 2, 3, 4].map(signUpOver))
  const canary = await signUpOver(99)
  const admin = (JSON.parse((await call('POST', '/api/auth/login', json(ADMIN))).body) as { access_token: string }).access_token
  const ctx = await contextFor(doc, { user: user.token, admin }, victims, { id: user.id, secret }, bodyLimit)

  // PostgreSQL: the rows themselves, read directly. PGlite lives inside the server process, so there
  // the snapshot is what the API shows of them: every user (export, with updated_at) and the
  // sessions of the fuzz's user, admin and canary account.
  let snapshot: () => Promise<string>
  if (server.databaseUrl !== undefined) {
    const client = new pg.Client({ connectionString: server.databaseUrl })
    await client.connect()
    t.teardown(async () => { await client.end() })
    snapshot = async () => JSON.stringify((await client.query(`
      select (select count(*) from users)::int as users,
             (select md5(coalesce(string_agg(u::text, '|' order by u.id), '')) from users u) as users_md5,
             (select count(*) from refresh_tokens)::int as tokens,
             (select md5(coalesce(string_agg(r::text, '|' order by r.id), '')) from refresh_tokens r) as tokens_md5`)).rows[0])
  } else {
    const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
    snapshot = async () => (await Promise.all([
      call('GET', '/api/users/export', { headers: bearer(admin) }),
      ...[user.token, admin, canary.token].map(async (token) => await call('GET', '/api/auth/sessions', { headers: bearer(token) }))
    ])).map((answer) => `${answer.statusCode} ${answer.body}`).join('\n')
  }

  const stats = new Stats()
  await fuzzAll(t, ctx, operations, { send, snapshot }, HTTP_RUNS, stats)
  t.comment(`over HTTP (${backend}): ${stats.summary()}`)
  assertCovered(t, stats, operations, HTTP_RUNS)

  t.equal(server.child.exitCode, null, 'the process is still running')
  const live = await call('GET', '/health/live')
  t.equal(live.statusCode, 200, 'and still answers /health/live')
  t.equal((await call('GET', '/health/ready')).statusCode, 200, 'and is ready')
  // A polluted Object.prototype would make this valid login a 400 (see the canary test above).
  const login = await call('POST', '/api/auth/login', json({ email: canary.email, password: canary.password }))
  t.equal(login.statusCode, 200, 'no prototype pollution: a valid login still succeeds')
  t.notMatch(login.body, /polluted/)
})
