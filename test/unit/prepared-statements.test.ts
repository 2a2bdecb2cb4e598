import type pg from 'pg'
import t from 'tap'
import { preparingPool } from '../../db/prepared-statements.js'

// What node-postgres is asked to run, without a server; the real thing is in
// test/integration/prepared-statements.test.ts (PostgreSQL only).
function fakePool (fail?: Error) {
  const calls: unknown[] = []
  const released: Array<boolean | Error | undefined> = []
  const client = {
    query: async (...args: unknown[]) => {
      calls.push(args.length === 1 ? args[0] : args)
      if (fail !== undefined) throw fail
      return { rows: [], rowCount: 0, command: 'SELECT' }
    },
    release: (destroy?: boolean | Error) => { released.push(destroy) }
  }
  const pool = { connect: async () => client, end: async () => { released.push(undefined) } }
  return { pool: pool as unknown as pg.Pool, calls, released }
}

t.test('statements with parameters are named by their text, up to the limit; others run as given', async (t) => {
  const { pool, calls, released } = fakePool()
  const preparing = preparingPool(pool, 2)
  const client = await preparing.connect()
  t.equal(await preparing.connect(), client, 'one wrapper per pooled client, as Kysely expects')
  await client.query('select 1', [])
  await client.query('select a where id = $1', [1])
  await client.query('select b where id = $1', [2])
  await client.query('select a where id = $1', [3])
  await client.query('select c where id = $1', [4])
  t.same(calls, [
    ['select 1', []],
    { name: 'gatehouse_1', text: 'select a where id = $1', values: [1] },
    { name: 'gatehouse_2', text: 'select b where id = $1', values: [2] },
    { name: 'gatehouse_1', text: 'select a where id = $1', values: [3] },
    ['select c where id = $1', [4]]
  ])
  client.release()
  await preparing.end()
  t.same(released, [false, undefined], 'released to the pool, then the pool ended')
})

t.test('a connection whose statement went stale is closed on release; other errors keep it', async (t) => {
  const stale = fakePool(new Error('cached plan must not change result type'))
  const client = await preparingPool(stale.pool).connect()
  await t.rejects(client.query('select * from users where id = $1', [1]), /cached plan/)
  client.release()
  t.same(stale.released, [true])

  const other = fakePool(new Error('duplicate key value violates unique constraint'))
  const kept = await preparingPool(other.pool).connect()
  await t.rejects(kept.query('insert into users values ($1)', [1]), /duplicate key/)
  kept.release()
  t.same(other.released, [false])
})
