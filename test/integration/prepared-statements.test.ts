import pg from 'pg'
import t from 'tap'
import { translateDatabaseError } from '../../db/errors.js'
import { preparingPool } from '../../db/prepared-statements.js'
import { DatabaseUnavailableError } from '../../services/errors.js'
import { backend, freshDatabaseUrl } from '../helper.js'

const needsServer = { skip: backend === 'postgres' ? false : 'prepared statements are a PostgreSQL server feature (PGlite runs unprepared)' }

t.test('prepared statements on a real PostgreSQL connection', needsServer, async (t) => {
  const raw = new pg.Pool({ connectionString: await freshDatabaseUrl(t), max: 1 })
  const pool = preparingPool(raw, 2)
  t.teardown(async () => { await pool.end() })
  const client = await pool.connect()
  const prepared = async (): Promise<string[]> =>
    (await client.query<{ statement: string }>('select statement from pg_prepared_statements order by prepare_time, name', [])).rows.map((r) => r.statement)

  await client.query('create table things (id int primary key, label text)', [])
  await client.query('insert into things values (1, $1), (2, $2)', ['one', 'two'])
  t.same(await prepared(), ['insert into things values (1, $1), (2, $2)'], 'a statement with parameters is prepared; one without is not')

  const byId = 'select * from things where id = $1'
  t.same((await client.query<{ label: string }>(byId, [1])).rows, [{ id: 1, label: 'one' }])
  t.same((await client.query<{ label: string }>(byId, [2])).rows, [{ id: 2, label: 'two' }], 'a second run reuses the statement with new values')
  t.same(await prepared(), ['insert into things values (1, $1), (2, $2)', byId], 'prepared once')

  // Past the limit of distinct texts, statements still run, unnamed.
  t.same((await client.query('select label from things where id = $1', [2])).rows, [{ label: 'two' }])
  t.equal((await prepared()).length, 2, 'no third statement is kept')

  // A migration adds a column: the prepared `select *` now fails, and its connection is replaced.
  await client.query('alter table things add column extra int', [])
  const err = await client.query(byId, [1]).catch((e: unknown) => e)
  t.match(err, { message: /cached plan must not change result type/ })
  t.type(translateDatabaseError(err), DatabaseUnavailableError, 'answered 503: a retry succeeds')
  client.release()
  t.equal(raw.totalCount, 0, 'the stale connection was closed, not returned to the pool')

  const fresh = await pool.connect()
  t.same((await fresh.query(byId, [1])).rows, [{ id: 1, label: 'one', extra: null }], 'a new connection prepares it afresh')
  fresh.release()
  t.equal(raw.totalCount, 1, 'and goes back to the pool')
})
