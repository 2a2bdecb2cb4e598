import { sql, type Kysely } from 'kysely'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openDatabase } from '../../db/connection.js'
import { migrateToLatest } from '../../db/migrator.js'
import { testConfig } from '../helper.js'

// Both backends in every run, whichever one DATABASE_URL selects for the rest of the suite.

for (const preparedStatements of [true, false]) {
  t.test(`a PostgreSQL pool (prepared statements ${preparedStatements ? 'on' : 'off'}) reports its connections and queue`, async (t) => {
    const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:1/nowhere'
    const handle = await openDatabase({ ...testConfig().database, url, preparedStatements }, () => {})
    t.teardown(async () => { await handle.db.destroy() })
    t.equal(handle.backend, 'postgres')
    t.same(handle.connections(), { total: 0, idle: 0 }, 'no connection is opened before it is needed')
    t.equal(handle.waitingCount(), 0)
    if (process.env.DATABASE_URL === undefined) return
    // On a real server: the setting decides whether the connection keeps a named statement.
    const prepared = await handle.db.connection().execute(async (db) => {
      await sql`select ${1}::int as one`.execute(db)
      return (await sql<{ n: number }>`select count(*)::int as n from pg_prepared_statements`.execute(db)).rows[0]?.n
    })
    t.equal(prepared !== 0, preparedStatements, preparedStatements ? 'statements are prepared' : 'nothing is prepared')
  })
}

t.test('embedded PGlite reports its single connection as idle or leased', async (t) => {
  const handle = await openDatabase({ ...testConfig().database, url: undefined, pgliteDataDir: 'memory://' }, () => {})
  t.teardown(async () => { await handle.db.destroy() })
  t.equal(handle.backend, 'pglite')
  t.same(handle.connections(), { total: 1, idle: 1 })
  t.equal(handle.waitingCount(), 0)
  await handle.db.connection().execute(async () => {
    t.same(handle.connections(), { total: 1, idle: 0 }, 'leased while a connection is held')
  })
  t.same(handle.connections(), { total: 1, idle: 1 })
})

t.test('a failing migration stops start-up and is named', async (t) => {
  const handle = await openDatabase({ ...testConfig().database, url: undefined, pgliteDataDir: 'memory://' }, () => {})
  t.teardown(async () => { await handle.db.destroy() })
  const broken = { '0001-broken': { up: async (db: Kysely<any>) => { await sql`create table oops (`.execute(db) } } }
  await t.rejects(migrateToLatest(handle.db, broken), /migrations failed at 0001-broken/)
})

t.test('embedded PGlite in a data directory keeps its data across a restart', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'gatehouse-pglite-')), 'nested', 'data')
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const config = { ...testConfig().database, url: undefined, pgliteDataDir: dir }
  const first = await openDatabase(config, () => {})
  await migrateToLatest(first.db)
  await sql`insert into users (id, email, username, password_hash) values (gen_random_uuid(), 'kept@example.com', 'kept', 'x')`.execute(first.db)
  await first.db.destroy()

  const second = await openDatabase(config, () => {})
  t.teardown(async () => { await second.db.destroy() })
  const { rows } = await sql<{ email: string }>`select email from users`.execute(second.db)
  t.same(rows, [{ email: 'kept@example.com' }])
})
