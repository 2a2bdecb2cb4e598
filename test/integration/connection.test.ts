import { sql, type Kysely } from 'kysely'
import t from 'tap'
import { openDatabase } from '../../db/connection.js'
import { migrateToLatest } from '../../db/migrator.js'
import { testConfig } from '../helper.js'

// Both backends in every run, whichever one DATABASE_URL selects for the rest of the suite.

t.test('a PostgreSQL pool reports its connections and queue', async (t) => {
  const handle = await openDatabase({ ...testConfig().database, url: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:1/nowhere' }, () => {})
  t.teardown(async () => { await handle.db.destroy() })
  t.equal(handle.backend, 'postgres')
  t.same(handle.connections(), { total: 0, idle: 0 }, 'no connection is opened before it is needed')
  t.equal(handle.waitingCount(), 0)
})

t.test('embedded PGlite reports its single connection as idle or leased', async (t) => {
  const handle = await openDatabase({ ...testConfig().database, url: undefined, pgliteDataDir: 'memory://' }, () => {})
  t.teardown(async () => { await handle.db.destroy() })
  t.equal(handle.backend, 'pglite')
  t.same(handle.connections(), { total: 1, idle: 1 })
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
