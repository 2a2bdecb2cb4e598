import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { freshDatabaseUrl } from '../helper.js'
import { collect, listening, run } from '../processes.js'

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
