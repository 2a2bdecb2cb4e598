import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import t from 'tap'
import { freshDatabaseUrl, newUser } from '../helper.js'

const root = new URL('../../', import.meta.url).pathname

/** Runs one of the project's entry points as a real process, through the same TypeScript loader as the tests. */
function run (entry: string, env: Record<string, string>, args: string[] = [], input = ''): ChildProcess {
  const child = spawn(process.execPath, [...process.execArgv, join(root, entry), ...args], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  child.stdin?.end(input)
  return child
}

async function collect (child: ChildProcess): Promise<{ code: number | null, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

/** Resolves with the base URL once the server logs that it listens. */
async function listening (child: ChildProcess): Promise<string> {
  return await new Promise((resolve, reject) => {
    let buffered = ''
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(buffered)
      if (match?.[1] !== undefined) resolve(match[1])
    })
    child.once('exit', (code) => { reject(new Error(`server exited with ${String(code)} before listening:\n${buffered}`)) })
  })
}

t.test('the server, over a real socket: signup, login, me, then a clean SIGTERM exit', async (t) => {
  const url = await freshDatabaseUrl(t)
  const child = run('server.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'process-test-secret-at-least-32-chars',
    ...(url !== undefined && { DATABASE_URL: url })
  })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  const base = await listening(child)

  const fields = newUser()
  const signup = await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) })
  t.equal(signup.status, 201)
  const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: fields.email, password: fields.password }) })
  t.equal(login.status, 200)
  const { access_token: token } = await login.json() as { access_token: string }
  const me = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(me.status, 200)
  t.equal((await me.json() as { email: string }).email, fields.email)
  const bad = await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"oops"' })
  t.equal(bad.status, 400)
  t.match(bad.headers.get('content-type'), /application\/problem\+json/)

  child.kill('SIGTERM')
  const { code, stdout } = await exited
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.match(stdout, /shutting down/)
  t.notMatch(stdout, new RegExp(`${fields.password}|${token}`), 'no password or token in the log')
})

t.test('a bad configuration stops start-up with one line per bad variable', async (t) => {
  const { code, stderr } = await collect(run('server.ts', { PORT: 'eighty', LOG_LEVEL: 'chatty', JWT_SECRET: 'too-short' }))
  t.equal(code, 1)
  t.match(stderr, /^ {2}PORT: /m)
  t.match(stderr, /^ {2}LOG_LEVEL: /m)
  t.match(stderr, /^ {2}JWT_SECRET: .*\(value hidden\)/m)
  t.notMatch(stderr, /too-short/, 'the secret is not echoed')
})

t.test('without JWT_SECRET in development it starts with a warning', async (t) => {
  const child = run('server.ts', { PORT: '0', HOST: '127.0.0.1', PGLITE_DATA_DIR: 'memory://', NODE_ENV: 'development', JWT_SECRET: '', DATABASE_URL: '' })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  await listening(child)
  child.kill('SIGINT')
  const { code, stdout } = await exited
  t.equal(code, 0)
  t.match(stdout, /JWT_SECRET is not set/)
})

t.test('a start-up failure exits 1 with the reason', async (t) => {
  const { code, stderr } = await collect(run('server.ts', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', DB_CONNECTION_TIMEOUT_MS: '300' }))
  t.equal(code, 1)
  t.match(stderr, /failed to start/)
})

t.test('npm run migrate applies pending migrations once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-migrate-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const url = await freshDatabaseUrl(t)
  const env = { PGLITE_DATA_DIR: dir, ...(url !== undefined && { DATABASE_URL: url }) }
  const first = await collect(run('cli.ts', env, ['migrate']))
  t.equal(first.code, 0, first.stderr)
  t.match(first.stdout, /0001-create-users: Success/)
  const second = await collect(run('cli.ts', env, ['migrate']))
  t.equal(second.code, 0)
  t.match(second.stdout, /already up to date/)
})

t.test('npm run migrate reports a bad configuration and fails', async (t) => {
  const { code, stderr } = await collect(run('cli.ts', { DB_POOL_SIZE: 'many' }, ['migrate']))
  t.equal(code, 1)
  t.match(stderr, /DB_POOL_SIZE/)
})

t.test('npm run migrate fails with the reason when the database is unreachable', async (t) => {
  const { code, stderr } = await collect(run('cli.ts', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere', DB_CONNECTION_TIMEOUT_MS: '300' }, ['migrate']))
  t.equal(code, 1)
  t.match(stderr, /migration|ECONNREFUSED/)
})

t.test('graceful shutdown under load: readiness fails first, no accepted request fails, exit 0', async (t) => {
  const url = await freshDatabaseUrl(t)
  const child = run('server.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'process-test-secret-at-least-32-chars',
    SHUTDOWN_DELAY_MS: '1000',
    ...(url !== undefined && { DATABASE_URL: url })
  })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  const base = await listening(child)
  const fields = newUser()
  t.equal((await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) })).status, 201)
  const login = async (): Promise<Response> => await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: fields.email, password: fields.password }) })
  const { access_token: token } = await (await login()).json() as { access_token: string }

  // Like a load balancer: keep sending until readiness says the pod is draining.
  const lb = { draining: false }
  const outcomes: string[] = []
  const worker = async (slow: boolean): Promise<void> => {
    while (!lb.draining) {
      try {
        const res = slow ? await login() : await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })
        await res.arrayBuffer()
        outcomes.push(String(res.status))
      } catch (err) {
        outcomes.push(`error: ${(err as Error).message}`)
      }
    }
  }
  const poller = (async () => {
    while (!lb.draining) {
      const res = await fetch(`${base}/health/ready`).catch(() => undefined)
      if (res?.status === 503) lb.draining = true
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })()
  const workers = [worker(true), worker(true), worker(false), worker(false), worker(false)]
  await new Promise((resolve) => setTimeout(resolve, 500))
  child.kill('SIGTERM')
  await Promise.all([poller, ...workers])

  const { code } = await exited
  t.equal(code, 0, 'exits 0')
  t.ok(outcomes.length > 20, `served a stream of requests (${outcomes.length})`)
  t.same(outcomes.filter((o) => o !== '200'), [], 'every request sent before readiness failed succeeded')
})

t.test('graceful shutdown: requests in flight when the server closes still complete', async (t) => {
  const url = await freshDatabaseUrl(t)
  const child = run('server.ts', {
    PORT: '0',
    HOST: '127.0.0.1',
    PGLITE_DATA_DIR: 'memory://',
    JWT_SECRET: 'process-test-secret-at-least-32-chars',
    ...(url !== undefined && { DATABASE_URL: url })
  })
  const exited = collect(child)
  t.teardown(() => { child.kill('SIGKILL') })
  const base = await listening(child)
  const fields = newUser()
  t.equal((await fetch(`${base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields) })).status, 201)
  // Logins hash with OWASP argon2id parameters: each takes tens of milliseconds, so these are in flight.
  const inFlight = Array.from({ length: 6 }, async () => {
    const res = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ email: fields.email, password: fields.password }) })
    return res.status
  })
  await new Promise((resolve) => setTimeout(resolve, 30))
  child.kill('SIGTERM')
  t.same(await Promise.all(inFlight), [200, 200, 200, 200, 200, 200])
  t.equal((await exited).code, 0)
})

t.test('the CLI', async (t) => {
  t.test('without a known command it prints usage and exits 2', async (t) => {
    const { code, stderr } = await collect(run('cli.ts', {}, ['frobnicate']))
    t.equal(code, 2)
    t.match(stderr, /usage: gatehouse <command>/)
  })

  t.test('create-admin creates once, reading the password from stdin', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cli-'))
    t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    const url = await freshDatabaseUrl(t)
    const env = { PGLITE_DATA_DIR: dir, ...(url !== undefined && { DATABASE_URL: url }) }
    const first = await collect(run('cli.ts', env, ['create-admin', 'Ops@Example.com'], 'cli-admin-password\n'))
    t.equal(first.code, 0, first.stderr)
    t.match(first.stdout, /admin Ops@Example.com: created/)
    const second = await collect(run('cli.ts', env, ['create-admin', 'ops@example.com'], 'another-password\n'))
    t.equal(second.code, 0, second.stderr)
    t.match(second.stdout, /: exists/)
  })

  t.test('create-admin refuses a missing email or a short password', async (t) => {
    t.equal((await collect(run('cli.ts', { PGLITE_DATA_DIR: 'memory://', DATABASE_URL: '' }, ['create-admin']))).code, 2)
    const short = await collect(run('cli.ts', { PGLITE_DATA_DIR: 'memory://', DATABASE_URL: '' }, ['create-admin', 'a@example.com'], 'short\n'))
    t.equal(short.code, 2)
    t.match(short.stderr, /8-128 characters/)
    const none = await collect(run('cli.ts', { PGLITE_DATA_DIR: 'memory://', DATABASE_URL: '' }, ['create-admin', 'a@example.com']))
    t.equal(none.code, 2, 'no password on stdin at all')
  })

  t.test('healthcheck exits 0 when the server answers and 1 when nothing does', async (t) => {
    const server = run('server.ts', { PORT: '0', HOST: '127.0.0.1', PGLITE_DATA_DIR: 'memory://', DATABASE_URL: '' })
    const exited = collect(server)
    t.teardown(() => { server.kill('SIGKILL') })
    const base = await listening(server)
    const ok = await collect(run('cli.ts', { PORT: new URL(base).port }, ['healthcheck']))
    t.equal(ok.code, 0)
    t.match(ok.stdout, /^ok/)
    server.kill('SIGTERM')
    await exited
    const down = await collect(run('cli.ts', { PORT: new URL(base).port }, ['healthcheck']))
    t.equal(down.code, 1)
    t.match(down.stdout, /unhealthy/)
  })
})
