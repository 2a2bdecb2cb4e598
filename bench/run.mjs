#!/usr/bin/env node
// Gatehouse's benchmark: `npm run bench` after `npm ci && npm run build`. See bench/README.md.
// Every load runs for a fixed time against servers this script starts on 127.0.0.1, and every
// database it creates is dropped at the end. Never part of `npm test`.
import { hash as argon2Hash } from '@node-rs/argon2'
import autocannon from 'autocannon'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { v7 as uuidv7 } from 'uuid'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const { values: opts } = parseArgs({
  options: {
    users: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    'login-connections': { type: 'string', default: '8' },
    'read-rate': { type: 'string', default: '500' },
    'pool-size': { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    only: { type: 'string' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
    profile: { type: 'boolean', default: false },
    // For experiments: extra variables for Gatehouse, e.g. --gatehouse-env=UV_THREADPOOL_SIZE=2
    'gatehouse-env': { type: 'string', multiple: true, default: [] }
  }
})
const GATEHOUSE_ENV = Object.fromEntries(opts['gatehouse-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
const USERS = positive('users')
const DURATION = positive('duration')
const WARMUP = Number(opts.warmup)
const CONNECTIONS = positive('connections')
const LOGIN_CONNECTIONS = positive('login-connections')
const READ_RATE = positive('read-rate')
const POOL_SIZE = positive('pool-size')
const ROUNDS = positive('rounds')
const ONLY = opts.only === undefined ? undefined : new Set(opts.only.split(','))
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
const PASSWORD = 'bench-password-1'
const ADMIN_EMAIL = 'bench-admin@example.com'
// OWASP's argon2id setting, the one Gatehouse hashes with (services/password-hasher.ts).
const ARGON2ID = { memoryCost: 19_456, timeCost: 2, parallelism: 1, algorithm: 2 }

function positive (name) {
  const n = Number(opts[name])
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
  return n
}

const log = (line) => { process.stderr.write(`[bench] ${line}\n`) }
const wanted = (scenario) => ONLY === undefined || ONLY.has(scenario)
const round = (n, digits = 2) => Number.isFinite(n) ? Number(n.toFixed(digits)) : null

// ---------------------------------------------------------------- processes

const children = new Set()

async function freePort () {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A child process whose output is kept (the last few KiB) for when it fails. */
function startProcess (args, env, input) {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk) => { output = (output + chunk.toString()).slice(-4000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  child.stdin.end(input ?? '')
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  child.output = () => output
  children.add(child)
  child.exited.then(() => children.delete(child))
  return child
}

async function stopProcess (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const stopped = await Promise.race([child.exited, delay(15_000, 'timeout')])
  if (stopped === 'timeout') {
    child.kill('SIGKILL')
    await child.exited
  }
}

async function runToEnd (args, env, input) {
  const child = startProcess(args, env, input)
  const { code } = await child.exited
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}:\n${child.output()}`)
  return child.output()
}

function get (port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.setTimeout(2000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
  })
}

async function postJson (port, urlPath, payload, headers = {}) {
  const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(payload)
  })
  return { status: res.status, body: await res.json() }
}

/** Milliseconds from `since` until `urlPath` first answers 200, polling every 5 ms for at most `limitMs`. */
async function untilOk (child, port, urlPath, since, limitMs = 60_000) {
  while (performance.now() - since < limitMs) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode} before it was ready:\n${child.output()}`)
    const res = await get(port, urlPath).catch(() => undefined)
    if (res?.status === 200) return performance.now() - since
    await delay(5)
  }
  throw new Error(`not ready on ${urlPath} after ${limitMs} ms:\n${child.output()}`)
}

const CLOCK_TICKS = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) } catch { return 100 } })()

/** CPU seconds a process has used (user + system), from /proc; 0 once it is gone. */
function cpuSeconds (pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
  } catch {
    return 0
  }
}

/** The PostgreSQL server's processes (postmaster and backends), by their command name. */
function postgresPids () {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres' } catch { return false }
  })
}

/**
 * CPU seconds of the whole machine, from /proc/stat: busy (processes), interrupts (where the kernel
 * runs loopback TCP, so mostly the benchmark's own traffic) and total. Time stolen by the
 * hypervisor counts as neither busy nor interrupts.
 */
function machineCpu () {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).filter(Boolean)
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields.slice(0, 8).map((n) => Number(n) / CLOCK_TICKS)
  return { busy: user + nice + system, interrupts: irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal }
}

/** CPU used by the server under test, PostgreSQL, this process, and everything else, over one run. */
function cpuMeter (serverPid) {
  const pgPids = postgresPids()
  const start = { server: cpuSeconds(serverPid), pg: new Map(pgPids.map((pid) => [pid, cpuSeconds(pid)])), self: process.cpuUsage(), machine: machineCpu() }
  return () => {
    const server = cpuSeconds(serverPid) - start.server
    let pgDelta = 0
    // Per process, and only those alive throughout: other databases' backends come and go.
    for (const pid of postgresPids()) if (start.pg.has(pid)) pgDelta += Math.max(0, cpuSeconds(pid) - start.pg.get(pid))
    const selfUsage = process.cpuUsage(start.self)
    const self = (selfUsage.user + selfUsage.system) / 1e6
    const machine = machineCpu()
    const busy = machine.busy - start.machine.busy
    const total = machine.total - start.machine.total
    return { server, postgres: pgDelta, loadGenerator: self, other: Math.max(0, busy - server - pgDelta - self), interrupts: machine.interrupts - start.machine.interrupts, capacity: total }
  }
}

/**
 * Waits (at most 20 s) until the machine is nearly idle for a second: other work on it (a test
 * run, a build) would otherwise take CPU from the run about to start. Returns the seconds waited.
 */
async function quiet () {
  const start = performance.now()
  while (performance.now() - start < 20_000) {
    const before = machineCpu()
    await delay(1000)
    const after = machineCpu()
    if ((after.busy + after.interrupts - before.busy - before.interrupts) / (after.total - before.total) < 0.1) break
  }
  return round((performance.now() - start) / 1000, 1)
}

/** Resident set size of a process, KiB, from /proc. */
function rssKiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1])
}

function gatehouseEnv (port, extra = {}) {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    JWT_SECRET: randomBytes(32).toString('hex'),
    MIGRATE_ON_START: 'true',
    HOST: '127.0.0.1',
    PORT: String(port),
    DB_POOL_SIZE: String(POOL_SIZE),
    // Long enough that the tokens made at the start outlive the run.
    ACCESS_TOKEN_TTL: '7200',
    // A closed-loop load generator keeps the server saturated by design, and at the default 0.98
    // event-loop utilisation Gatehouse would shed part of it as 503s: this measures capacity instead.
    LOAD_SHED_EVENT_LOOP_UTILIZATION: '0',
    LOAD_SHED_EVENT_LOOP_DELAY_MS: '0',
    ...GATEHOUSE_ENV,
    ...extra
  }
}

async function startGatehouse (env, nodeArgs = []) {
  const port = await freePort()
  const since = performance.now()
  const child = startProcess([...nodeArgs, 'dist/server.js'], gatehouseEnv(port, env))
  const readyMs = await untilOk(child, port, '/health/ready', since)
  return { child, port, readyMs }
}

// ---------------------------------------------------------------- database

function databaseUrl (name) {
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}

async function adminQuery (text) {
  const client = new pg.Client({ connectionString: ADMIN_URL })
  await client.connect()
  try {
    return await client.query(text)
  } finally {
    await client.end()
  }
}

/** N users with one precomputed argon2id hash, 5000 to a multi-row insert; ids are UUIDv7 of their created_at. */
async function seed (url, count) {
  const passwordHash = await argon2Hash(PASSWORD, ARGON2ID)
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const ids = new Array(count)
  const start = performance.now()
  const base = Date.now() - count * 10
  try {
    for (let from = 0; from < count; from += 5000) {
      const batch = { ids: [], emails: [], usernames: [], created: [] }
      for (let i = from; i < Math.min(count, from + 5000); i++) {
        const msecs = base + i * 10
        ids[i] = uuidv7({ msecs })
        batch.ids.push(ids[i])
        batch.emails.push(`bench${i}@example.com`)
        batch.usernames.push(`bench${i}`)
        batch.created.push(new Date(msecs).toISOString())
      }
      await client.query(
        `insert into users (id, email, username, password_hash, role, created_at, updated_at)
         select id, email, username, $5, 'user', created_at, created_at
         from unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) as t(id, email, username, created_at)`,
        [batch.ids, batch.emails, batch.usernames, batch.created, passwordHash])
    }
    const seconds = (performance.now() - start) / 1000
    // A table in service has statistics from autovacuum; give the fresh one its statistics now.
    await client.query('vacuum (analyze) users')
    return { ids, seconds }
  } finally {
    await client.end()
  }
}

// ---------------------------------------------------------------- load

function percentile (sorted, p) {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

/**
 * One autocannon run. Latencies are taken from every response (float milliseconds), not from
 * autocannon's whole-millisecond histogram, so sub-millisecond differences show.
 */
async function load (port, { requests, connections = CONNECTIONS, seconds = DURATION, rate, headers, pid }) {
  const latencies = []
  const meter = pid === undefined ? undefined : cpuMeter(pid)
  let peakRss = 0
  const rssSampler = pid === undefined ? undefined : setInterval(() => { peakRss = Math.max(peakRss, rssKiB(pid)) }, 100)
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests,
    headers,
    ...(rate !== undefined && { overallRate: rate })
  })
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 300) latencies.push(responseTime)
  })
  const result = await instance
  clearInterval(rssSampler)
  const cpu = meter?.()
  latencies.sort((a, b) => a - b)
  const errors = result.errors + result.timeouts + result.non2xx
  const perRequest = (seconds) => round(seconds * 1e6 / Math.max(1, result['2xx']), 0)
  return {
    rps: round(result['2xx'] / result.duration, 1),
    p50: round(percentile(latencies, 50), 3),
    p99: round(percentile(latencies, 99), 3),
    requests: result['2xx'],
    errors,
    statusCodes: result.statusCodeStats,
    ...(pid !== undefined && { peakRssMiB: round(peakRss / 1024, 1) }),
    // CPU per request is what contention cannot hide: the same work costs the same however busy the machine.
    ...(cpu !== undefined && {
      cpu: {
        serverUsPerRequest: perRequest(cpu.server),
        postgresUsPerRequest: perRequest(cpu.postgres),
        loadGeneratorUsPerRequest: perRequest(cpu.loadGenerator),
        otherWorkPercent: round(100 * cpu.other / cpu.capacity, 1),
        interruptsPercent: round(100 * cpu.interrupts / cpu.capacity, 1)
      }
    })
  }
}

/** Server pids by port, so that each run meters the server it loads. */
const pidByPort = new Map()

async function measure (port, { alreadyBusy = false, ...spec }) {
  // Lets the server's event-loop utilisation fall back after the previous run, so load shedding
  // (on by default, as in production) does not carry one scenario's saturation into the next.
  await delay(1500)
  const waited = alreadyBusy ? 0 : await quiet()
  const pid = pidByPort.get(port)
  if (WARMUP > 0) await load(port, { ...spec, seconds: WARMUP })
  return { ...await load(port, { ...spec, pid }), waitedForQuietSeconds: waited }
}

/**
 * Gatehouse and the reference measured in alternation, ROUNDS times each, the order swapped every
 * round: on a shared machine capacity drifts over tens of seconds (the reference alone measured
 * 20k and 40k req/s on /health within minutes), so the ratio is taken within each round, and the
 * round with the median ratio is the one reported.
 */
async function paired (gatehousePort, gatehouseSpec, referencePort, referenceSpec) {
  const sides = { gatehouse: [gatehousePort, gatehouseSpec], reference: [referencePort, referenceSpec] }
  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const run = {}
    for (const side of i % 2 === 0 ? ['gatehouse', 'reference'] : ['reference', 'gatehouse']) run[side] = await measure(...sides[side])
    rounds.push({ ...run, ratio: run.gatehouse.rps / run.reference.rps })
  }
  const median = [...rounds].sort((a, b) => a.ratio - b.ratio)[Math.floor(rounds.length / 2)]
  return { gatehouse: median.gatehouse, reference: median.reference, rounds: rounds.map((r) => ({ gatehouseRps: r.gatehouse.rps, referenceRps: r.reference.rps, ratio: round(r.ratio, 2) })) }
}

const pick = (items) => items[randomInt(items.length)]
/** A fixed set of prebuilt requests, cycled: autocannon builds each once, so the load generator stays cheap. */
const variants = (count, make) => Array.from({ length: count }, make)

/** Argon2id hashes per second with `concurrency` hashes in flight, in this (otherwise idle) process. */
async function argon2Rate (concurrency, seconds) {
  let done = 0
  const until = performance.now() + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await argon2Hash(PASSWORD, ARGON2ID)
      done++
    }
  }))
  return round(done / seconds, 1)
}

/** Streams the whole export, counting lines without keeping them, while sampling the server's RSS. */
async function exportRun (port, pid, headers, { pauseEveryBytes, pauseMs, stopAfterMs } = {}) {
  await delay(1500)
  await quiet()
  const baseline = rssKiB(pid)
  let peak = baseline
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid)) }, 20)
  const start = performance.now()
  try {
    return await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/users/export', headers, agent: false }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`export answered ${res.statusCode}`))
        let lines = 0
        let bytes = 0
        let first = ''
        let sincePause = 0
        const finish = (complete) => {
          const seconds = (performance.now() - start) / 1000
          resolve({ complete, lines, bytes, seconds: round(seconds, 3), rowsPerSecond: round(lines / seconds, 0), baselineRssMiB: round(baseline / 1024, 1), peakRssMiB: round(peak / 1024, 1), peakRssGrowthMiB: round((peak - baseline) / 1024, 1), firstLine: first })
        }
        res.on('data', (chunk) => {
          if (first === '') first = chunk.toString('utf8', 0, chunk.indexOf(10))
          bytes += chunk.length
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
          sincePause += chunk.length
          if (pauseEveryBytes !== undefined && sincePause >= pauseEveryBytes) {
            sincePause = 0
            res.pause()
            setTimeout(() => res.resume(), pauseMs)
          }
          if (stopAfterMs !== undefined && performance.now() - start > stopAfterMs) {
            req.destroy()
            finish(false)
          }
        })
        res.on('end', () => finish(true))
      })
      req.on('error', (err) => { if (stopAfterMs === undefined) reject(err) })
    })
  } finally {
    clearInterval(sampler)
  }
}

// ---------------------------------------------------------------- plans

/** EXPLAIN ANALYZE of the exact SQL the repository sends, captured through Kysely's log hook. */
async function plans (url, deepPosition, someIds) {
  const { Kysely, PostgresDialect } = await import('kysely')
  const { createUserRepository } = await import(path.join(ROOT, 'dist/db/user-repository.js'))
  const pool = new pg.Pool({ connectionString: url, max: 1 })
  let captured
  const db = new Kysely({ dialect: new PostgresDialect({ pool }), log: (event) => { captured = event.query } })
  const repo = createUserRepository(db)
  const explain = async (run) => {
    await run()
    const { rows } = await pool.query(`explain (analyze, buffers) ${captured.sql}`, captured.parameters)
    const text = rows.map((r) => r['QUERY PLAN'])
    return { sql: captured.sql, plan: text, executionMs: Number(/Execution Time: ([\d.]+)/.exec(text.join('\n'))?.[1]) }
  }
  try {
    return {
      firstPage: await explain(() => repo.list(20, undefined)),
      deepPage: await explain(() => repo.list(20, deepPosition)),
      exportBatch: await explain(() => repo.list(1000, deepPosition)),
      lookup100: await explain(() => repo.findByIds(someIds))
    }
  } finally {
    await db.destroy()
  }
}

// ---------------------------------------------------------------- the run

function gitInfo () {
  const git = (...args) => { try { return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim() } catch { return 'unknown' } }
  return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain') !== '' }
}

async function main () {
  for (const file of ['dist/server.js', 'dist/cli.js', 'dist/services/cursor.js']) {
    if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run npm run build first`)
  }
  const dbHost = new URL(ADMIN_URL).hostname
  if (!['127.0.0.1', 'localhost', '::1', '[::1]', ''].includes(dbHost)) throw new Error(`the benchmark only runs against a PostgreSQL on this machine, not ${dbHost}`)

  const results = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      node: process.version,
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: round(os.totalmem() / 2 ** 30, 1), kernel: `${os.type()} ${os.release()}`, arch: os.arch() },
      git: gitInfo(),
      options: { users: USERS, durationSeconds: DURATION, warmupSeconds: WARMUP, connections: CONNECTIONS, loginConnections: LOGIN_CONNECTIONS, readRate: READ_RATE, poolSize: POOL_SIZE, rounds: ROUNDS, only: opts.only ?? null, gatehouseEnv: GATEHOUSE_ENV }
    },
    scenarios: {}
  }
  const s = results.scenarios

  const dbName = `gatehouse_bench_${randomBytes(4).toString('hex')}`
  const url = databaseUrl(dbName)
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-bench-'))
  results.meta.postgres = (await adminQuery('select version()')).rows[0].version
  await adminQuery(`create database ${dbName}`)
  log(`database ${dbName}`)
  try {
    await runToEnd(['dist/cli.js', 'migrate'], { DATABASE_URL: url })
    log(`seeding ${USERS} users`)
    const { ids, seconds } = await seed(url, USERS)
    results.seed = { users: USERS, seconds: round(seconds, 2), rowsPerSecond: round(USERS / seconds, 0) }
    log(`seeded in ${seconds.toFixed(1)} s`)
    await runToEnd(['dist/cli.js', 'create-admin', ADMIN_EMAIL], { DATABASE_URL: url, NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }, `${PASSWORD}\n`)

    // A cursor 90% of the way down the keyset order, made the way the service makes them.
    const { encodeCursor } = await import(path.join(ROOT, 'dist/services/cursor.js'))
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const deepRow = (await client.query(
      `select id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at_text
       from users order by created_at desc, id desc offset $1 limit 1`, [Math.floor(USERS * 0.9)])).rows[0]
    await client.end()
    const deepPosition = { createdAt: deepRow.created_at_text, id: deepRow.id }
    const deepCursor = encodeCursor(deepPosition)
    results.plans = await plans(url, deepPosition, variants(100, () => pick(ids)))

    const profileDir = path.join(tmp, 'profiles')
    const gatehouse = await startGatehouse({ DATABASE_URL: url }, opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])
    const refPort = await freePort()
    const refSince = performance.now()
    const reference = startProcess(['bench/reference/server.mjs'], { DATABASE_URL: url, PORT: String(refPort), DB_POOL_SIZE: String(POOL_SIZE) })
    await untilOk(reference, refPort, '/health', refSince)
    const gp = gatehouse.port
    pidByPort.set(gp, gatehouse.child.pid)
    pidByPort.set(refPort, reference.pid)

    const login = async (email) => {
      const res = await postJson(gp, '/api/auth/login', { email, password: PASSWORD })
      if (res.status !== 200) throw new Error(`login as ${email}: ${res.status} ${JSON.stringify(res.body)}`)
      return { authorization: `Bearer ${res.body.access_token}` }
    }
    const admin = await login(ADMIN_EMAIL)
    const user = await login('bench0@example.com')

    const getUsers = variants(2000, () => ({ method: 'GET', path: `/api/users/${pick(ids)}` }))
    const refUsers = getUsers.map((r) => ({ method: 'GET', path: r.path.replace('/api/users/', '/users/') }))

    if (wanted('get')) {
      log('GET /api/users/:id vs reference')
      s.get = await paired(gp, { requests: getUsers, headers: admin }, refPort, { requests: refUsers })
    }
    if (wanted('me')) {
      log('GET /api/auth/me vs reference')
      s.me = await paired(gp, { requests: [{ method: 'GET', path: '/api/auth/me' }], headers: user }, refPort, { requests: refUsers })
    }
    if (wanted('health')) {
      log('GET /health/live vs reference /health')
      s.health = await paired(gp, { requests: [{ method: 'GET', path: '/health/live' }] }, refPort, { requests: [{ method: 'GET', path: '/health' }] })
    }
    const loginRequests = variants(500, () => ({
      method: 'POST',
      path: '/api/auth/login',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `bench${randomInt(USERS)}@example.com`, password: PASSWORD })
    }))
    if (wanted('login')) {
      log('POST /api/auth/login vs argon2id alone')
      const logins = await measure(gp, { requests: loginRequests, connections: LOGIN_CONNECTIONS })
      await quiet()
      // The target compares with every core hashing; the service hashes at most
      // PASSWORD_HASH_CONCURRENCY at once (cores - 1 by default), so that rate is reported too.
      const cap = Number(GATEHOUSE_ENV.PASSWORD_HASH_CONCURRENCY ?? 0) || Math.max(1, os.availableParallelism() - 1)
      s.login = {
        gatehouse: logins,
        argon2idAlone: { concurrency: 2, hashesPerSecond: await argon2Rate(2, DURATION) },
        argon2idAtServiceCap: { concurrency: cap, hashesPerSecond: await argon2Rate(cap, DURATION) }
      }
    }
    if (wanted('storm')) {
      log(`GET /api/users/:id at ${READ_RATE} req/s, alone and during a login storm`)
      const reads = { requests: getUsers, headers: admin, connections: 16, rate: READ_RATE }
      const alone = await measure(gp, reads)
      await quiet()
      const storm = load(gp, { requests: loginRequests, connections: LOGIN_CONNECTIONS, seconds: DURATION + WARMUP + 3 })
      const during = await measure(gp, { ...reads, alreadyBusy: true })
      s.storm = { readsAlone: alone, readsDuringLoginStorm: during, loginStorm: await storm }
    }
    if (wanted('list')) {
      log('list: first page vs deep page')
      s.list = {
        firstPage: await measure(gp, { requests: [{ method: 'GET', path: '/api/users?limit=20' }], headers: admin }),
        deepPage: await measure(gp, { requests: [{ method: 'GET', path: `/api/users?limit=20&cursor=${deepCursor}` }], headers: admin }),
        // One connection: latency without queueing, which is what a latency target is about.
        firstPage1: await measure(gp, { requests: [{ method: 'GET', path: '/api/users?limit=20' }], headers: admin, connections: 1 }),
        deepPage1: await measure(gp, { requests: [{ method: 'GET', path: `/api/users?limit=20&cursor=${deepCursor}` }], headers: admin, connections: 1 }),
        deepCursorDepth: Math.floor(USERS * 0.9)
      }
    }
    if (wanted('lookup')) {
      log('POST /api/users/lookup (100 ids) vs one GET')
      const lookups = variants(200, () => ({ method: 'POST', path: '/api/users/lookup', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: [...new Set(variants(100, () => pick(ids)))] }) }))
      s.lookup = {
        lookup100: await measure(gp, { requests: lookups, headers: admin }),
        singleGet: s.get?.gatehouse ?? await measure(gp, { requests: getUsers, headers: admin }),
        lookup100x1: await measure(gp, { requests: lookups, headers: admin, connections: 1 }),
        singleGetx1: await measure(gp, { requests: getUsers, headers: admin, connections: 1 })
      }
    }
    if (wanted('export')) {
      log('export')
      const runs = []
      for (let i = 0; i < 3; i++) runs.push(await exportRun(gp, gatehouse.child.pid, admin))
      // A reader far slower than the server: backpressure must hold the server's memory flat.
      const slow = await exportRun(gp, gatehouse.child.pid, admin, { pauseEveryBytes: 256 * 1024, pauseMs: 100, stopAfterMs: 5000 })
      // An idle V8 heap shrinks, and any load grows it back, so RSS "before" can sit well below what the
      // server holds under ordinary requests: growth is also given over the highest RSS of the GET,
      // list and lookup runs, which is what the export itself adds.
      const loaded = Math.max(0, ...[s.get?.gatehouse, s.list?.firstPage, s.list?.deepPage, s.lookup?.lookup100].map((x) => x?.peakRssMiB ?? 0))
      for (const run of [...runs, slow]) run.growthOverLoadedRssMiB = round(Math.max(0, run.peakRssMiB - Math.max(run.baselineRssMiB, loaded)), 1)
      s.export = { runs, slowReader: slow, users: USERS + 1, loadedRssMiB: loaded }
    }
    await stopProcess(reference)
    await stopProcess(gatehouse.child)

    if (wanted('startup')) {
      log('start-up times')
      const startup = async (env) => {
        await quiet()
        const run = await startGatehouse(env)
        await delay(2000)
        const idleRssMiB = round(rssKiB(run.child.pid) / 1024, 1)
        await stopProcess(run.child)
        return { readyMs: round(run.readyMs, 0), idleRssMiB }
      }
      const postgres = [await startup({ DATABASE_URL: url }), await startup({ DATABASE_URL: url }), await startup({ DATABASE_URL: url })]
      const dataDir = path.join(tmp, 'pglite')
      const pgliteFirst = await startup({ PGLITE_DATA_DIR: dataDir })
      const pgliteExisting = [await startup({ PGLITE_DATA_DIR: dataDir }), await startup({ PGLITE_DATA_DIR: dataDir }), await startup({ PGLITE_DATA_DIR: dataDir })]
      const median = (runs) => [...runs].sort((a, b) => a.readyMs - b.readyMs)[1]
      s.startup = { postgres: { runs: postgres, median: median(postgres) }, pgliteFirstInit: pgliteFirst, pgliteExisting: { runs: pgliteExisting, median: median(pgliteExisting) } }
    }
    if (opts.profile) results.profileDir = profileDir
  } finally {
    for (const child of children) await stopProcess(child)
    await adminQuery(`drop database if exists ${dbName} with (force)`).catch((err) => log(`could not drop ${dbName}: ${err.message}`))
    if (!opts.profile) await rm(tmp, { recursive: true, force: true })
  }

  results.targets = targets(results.scenarios)
  await mkdir(opts.out, { recursive: true })
  const base = path.join(opts.out, `bench-${USERS}-users${ONLY === undefined ? '' : `-${[...ONLY].join('-')}`}`)
  const markdown = toMarkdown(results)
  await writeFile(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`)
  await writeFile(`${base}.md`, markdown)
  process.stdout.write(markdown)
  log(`wrote ${path.relative(ROOT, base)}.json and .md`)
}

// ---------------------------------------------------------------- reporting

const ratio = (a, b) => round(a / b, 2)

function targets (s) {
  const out = []
  const add = (name, goal, value, met) => out.push({ name, goal, value, met })
  if (s.get) add('Authenticated GET /api/users/:id vs reference req/s', '>= 0.9x', ratio(s.get.gatehouse.rps, s.get.reference.rps), s.get.gatehouse.rps / s.get.reference.rps >= 0.9)
  if (s.me) add('GET /api/auth/me vs reference req/s', '>= 0.9x', ratio(s.me.gatehouse.rps, s.me.reference.rps), s.me.gatehouse.rps / s.me.reference.rps >= 0.9)
  if (s.health) add('GET /health/live vs reference /health req/s', '>= 0.9x', ratio(s.health.gatehouse.rps, s.health.reference.rps), s.health.gatehouse.rps / s.health.reference.rps >= 0.9)
  if (s.login) add('Logins/s vs argon2id hashes/s alone (2 concurrent)', '>= 0.9x', ratio(s.login.gatehouse.rps, s.login.argon2idAlone.hashesPerSecond), s.login.gatehouse.rps / s.login.argon2idAlone.hashesPerSecond >= 0.9)
  if (s.storm) add('GET p99 during a login storm vs alone', '<= 2x', ratio(s.storm.readsDuringLoginStorm.p99, s.storm.readsAlone.p99), s.storm.readsDuringLoginStorm.p99 / s.storm.readsAlone.p99 <= 2)
  if (s.list) add('Deep page vs first page latency (p50, one connection)', '<= 1.2x', ratio(s.list.deepPage1.p50, s.list.firstPage1.p50), s.list.deepPage1.p50 / s.list.firstPage1.p50 <= 1.2)
  if (s.lookup) add('Lookup of 100 ids vs one GET latency (p50, one connection)', '<= 2x', ratio(s.lookup.lookup100x1.p50, s.lookup.singleGetx1.p50), s.lookup.lookup100x1.p50 / s.lookup.singleGetx1.p50 <= 2)
  if (s.export) {
    const slowest = Math.min(...s.export.runs.map((r) => r.rowsPerSecond))
    const growth = Math.max(...s.export.runs.map((r) => r.growthOverLoadedRssMiB), s.export.slowReader.growthOverLoadedRssMiB)
    add('Export rows/s (slowest of 3)', '>= 100000', slowest, slowest >= 100_000)
    add('Export peak RSS growth over the RSS under ordinary load, MiB (largest of 4 runs)', '< 64', growth, growth < 64)
  }
  if (s.startup) {
    add('Start to ready, PostgreSQL (median of 3), ms', '< 1000', s.startup.postgres.median.readyMs, s.startup.postgres.median.readyMs < 1000)
    add('Start to ready, PGlite existing data dir (median of 3), ms', '< 1000', s.startup.pgliteExisting.median.readyMs, s.startup.pgliteExisting.median.readyMs < 1000)
  }
  return out
}

function toMarkdown (r) {
  const s = r.scenarios
  const m = r.meta
  const lines = [
    `# Gatehouse benchmark: ${r.meta.options.users} users`,
    '',
    `- Date: ${m.date}`,
    `- Command: \`${m.command}\``,
    `- Git commit: ${m.git.commit}${m.git.dirty ? ' (with uncommitted changes)' : ''}`,
    `- Machine: ${m.machine.cpus} × ${m.machine.model}, ${m.machine.memoryGiB} GiB, ${m.machine.kernel} ${m.machine.arch}`,
    `- Node ${m.node}; ${String(m.postgres).split(' on ')[0]}`,
    `- Load: autocannon in the benchmark's own process on the same machine, ${m.options.connections} connections (logins ${m.options.loginConnections}), ${m.options.warmupSeconds} s warm-up then ${m.options.durationSeconds} s measured; pool size ${m.options.poolSize} for both servers; Gatehouse and the reference alternate ${m.options.rounds ?? 1} rounds per comparison (get, me, health), the median round's ratio reported`,
    ...(r.seed ? [`- Seed: ${r.seed.users} users in ${r.seed.seconds} s (${r.seed.rowsPerSecond} rows/s, multi-row inserts, one precomputed argon2id hash)`] : []),
    '',
    '## Throughput and latency',
    '',
    'CPU is CPU time per successful request, in microseconds: the server process + PostgreSQL. "Other" is the share of',
    'the machine used meanwhile by processes outside the benchmark (the servers, PostgreSQL and the load generator):',
    'other users of the machine, and kernel threads. Interrupt time (loopback TCP) is not in it.',
    '',
    '| Scenario | Gatehouse req/s | p50 ms | p99 ms | errors | CPU µs/req | Baseline | Baseline req/s | p50 ms | p99 ms | CPU µs/req | Ratio | Other % |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|'
  ]
  const cpu = (x) => x?.cpu === undefined ? '' : `${x.cpu.serverUsPerRequest} + ${x.cpu.postgresUsPerRequest}`
  const other = (...xs) => Math.max(...xs.map((x) => x?.cpu?.otherWorkPercent ?? 0))
  const roundsText = (x) => x.rounds ? ` (median of ${x.rounds.map((r) => r.ratio).join(', ')})` : ''
  const row = (name, g, baseName, b, ratioText) => lines.push(`| ${name} | ${g.rps} | ${g.p50} | ${g.p99} | ${g.errors} | ${cpu(g)} | ${baseName} | ${b?.rps ?? ''} | ${b?.p50 ?? ''} | ${b?.p99 ?? ''} | ${cpu(b)} | ${ratioText} | ${other(g, b)} |`)
  if (s.get) row('GET /api/users/:id (admin bearer, random ids)', s.get.gatehouse, 'reference GET /users/:id', s.get.reference, `${ratio(s.get.gatehouse.rps, s.get.reference.rps)}x req/s${roundsText(s.get)}`)
  if (s.me) row('GET /api/auth/me', s.me.gatehouse, 'reference GET /users/:id', s.me.reference, `${ratio(s.me.gatehouse.rps, s.me.reference.rps)}x req/s${roundsText(s.me)}`)
  if (s.health) row('GET /health/live', s.health.gatehouse, 'reference GET /health', s.health.reference, `${ratio(s.health.gatehouse.rps, s.health.reference.rps)}x req/s${roundsText(s.health)}`)
  if (s.login) {
    lines.push(`| POST /api/auth/login (${m.options.loginConnections} connections) | ${s.login.gatehouse.rps} | ${s.login.gatehouse.p50} | ${s.login.gatehouse.p99} | ${s.login.gatehouse.errors} | ${cpu(s.login.gatehouse)} | argon2id hash alone, 2 concurrent | ${s.login.argon2idAlone.hashesPerSecond} | | | | ${ratio(s.login.gatehouse.rps, s.login.argon2idAlone.hashesPerSecond)}x | ${other(s.login.gatehouse)} |`)
    const cap = s.login.argon2idAtServiceCap
    if (cap) lines.push(`| the same | | | | | | argon2id alone, ${cap.concurrency} concurrent (the service's hashing limit) | ${cap.hashesPerSecond} | | | | ${ratio(s.login.gatehouse.rps, cap.hashesPerSecond)}x | |`)
  }
  if (s.storm) row(`GET /api/users/:id at ${m.options.readRate} req/s during a login storm (${s.storm.loginStorm.rps} logins/s)`, s.storm.readsDuringLoginStorm, 'same reads, no logins', s.storm.readsAlone, `${ratio(s.storm.readsDuringLoginStorm.p99, s.storm.readsAlone.p99)}x p99`)
  if (s.list) {
    row(`GET /api/users?limit=20, page ${s.list.deepCursorDepth} rows deep`, s.list.deepPage, 'first page', s.list.firstPage, `${ratio(s.list.deepPage.p50, s.list.firstPage.p50)}x p50`)
    row('the same, one connection', s.list.deepPage1, 'first page, one connection', s.list.firstPage1, `${ratio(s.list.deepPage1.p50, s.list.firstPage1.p50)}x p50`)
  }
  if (s.lookup) {
    row('POST /api/users/lookup, 100 ids', s.lookup.lookup100, 'one GET /api/users/:id', s.lookup.singleGet, `${ratio(s.lookup.lookup100.p50, s.lookup.singleGet.p50)}x p50`)
    row('the same, one connection', s.lookup.lookup100x1, 'one GET, one connection', s.lookup.singleGetx1, `${ratio(s.lookup.lookup100x1.p50, s.lookup.singleGetx1.p50)}x p50`)
  }
  if (s.export) {
    lines.push('', '## Export (GET /api/users/export, one client)', '',
      `Server RSS under ordinary load (highest of the GET, list and lookup runs): ${s.export.loadedRssMiB} MiB.`, '',
      '| Run | Lines | MiB | Seconds | Rows/s | RSS before, MiB | Peak RSS, MiB | Growth over before, MiB | Growth over ordinary load, MiB |', '|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    const exportRow = (name, e) => lines.push(`| ${name} | ${e.lines} | ${round(e.bytes / 2 ** 20, 1)} | ${e.seconds} | ${e.rowsPerSecond} | ${e.baselineRssMiB} | ${e.peakRssMiB} | ${e.peakRssGrowthMiB} | ${e.growthOverLoadedRssMiB} |`)
    s.export.runs.forEach((e, i) => exportRow(String(i + 1), e))
    exportRow('slow reader (100 ms pause per 256 KiB, gone after 5 s)', s.export.slowReader)
  }
  if (s.startup) {
    const u = s.startup
    lines.push('', '## Start-up (spawn to first 200 on /health/ready) and idle RSS', '', '| Backend | Ready, ms (runs) | Median ms | Idle RSS, MiB |', '|---|---|---:|---:|')
    lines.push(`| PostgreSQL (schema present, MIGRATE_ON_START=true) | ${u.postgres.runs.map((x) => x.readyMs).join(', ')} | ${u.postgres.median.readyMs} | ${u.postgres.median.idleRssMiB} |`)
    lines.push(`| PGlite, existing data dir | ${u.pgliteExisting.runs.map((x) => x.readyMs).join(', ')} | ${u.pgliteExisting.median.readyMs} | ${u.pgliteExisting.median.idleRssMiB} |`)
    lines.push(`| PGlite, first-ever init (initdb + migrations) | ${u.pgliteFirstInit.readyMs} | ${u.pgliteFirstInit.readyMs} | ${u.pgliteFirstInit.idleRssMiB} |`)
  }
  if (r.plans) {
    lines.push('', '## Query plans (EXPLAIN ANALYZE of the repository\'s own SQL)', '', '| Query | Plan (top nodes) | Execution ms |', '|---|---|---:|')
    for (const [name, p] of Object.entries(r.plans)) {
      const nodes = p.plan.filter((l) => /->|^\w/.test(l) && !/^(Planning|Execution)/.test(l.trim())).slice(0, 3).map((l) => l.trim().replace(/\s+\(cost.*$/, '').replace(/^-> +/, '')).join(' → ')
      lines.push(`| ${name} | ${nodes.replaceAll('|', '\\|')} | ${p.executionMs} |`)
    }
  }
  if (r.targets.length > 0) {
    lines.push('', '## Targets', '', '| Target | Goal | Measured | Met |', '|---|---|---:|---|')
    for (const t of r.targets) lines.push(`| ${t.name} | ${t.goal} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`)
  }
  return `${lines.join('\n')}\n`
}

process.on('SIGINT', () => { log('interrupted: stopping servers and dropping the database'); process.exitCode = 130 })
main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack}\n`)
  process.exitCode = 1
})
