import { PGlite } from '@electric-sql/pglite'
import t, { type Test } from 'tap'
import { PGlitePool } from '../../db/pglite-pool.js'

// Starting PGlite takes a while, so the tests that leave the database open share one;
// each still gets its own pool, and so its own lease queue.
const shared = await PGlite.create('memory://')
t.teardown(async () => { await shared.close() })
const sharedPool = (): { pool: PGlitePool } => ({ pool: new PGlitePool(shared) })

/** A pool over a fresh in-memory PGlite, for the tests that close it. */
async function freshPool (t: Test): Promise<{ db: PGlite, pool: PGlitePool }> {
  const db = await PGlite.create('memory://')
  t.teardown(async () => { if (!db.closed) await db.close() })
  return { db, pool: new PGlitePool(db) }
}

/** Lets every pending promise callback run. */
const settle = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** Tracks whether a promise has settled yet. */
function track<T> (promise: Promise<T>): { promise: Promise<T>, done: () => boolean } {
  let resolved = false
  promise.then(() => { resolved = true }, () => { resolved = true })
  return { promise, done: () => resolved }
}

t.test('query reports the command, the affected row count and the rows', async (t) => {
  const { pool } = sharedPool()
  const client = await pool.connect()
  t.teardown(client.release)

  t.same(await client.query('create table items (id int primary key, name text)', []), { command: 'CREATE', rowCount: 0, rows: [] })
  t.same(await client.query('insert into items values ($1, $2) returning name', [1, 'one']), { command: 'INSERT', rowCount: 1, rows: [{ name: 'one' }] })
  t.same(await client.query('insert into items values (2, $1), (3, $2)', ['two', 'three']), { command: 'INSERT', rowCount: 2, rows: [] })
  t.same(await client.query('\n  UPDATE items set name = upper(name) where id > $1', [1]), { command: 'UPDATE', rowCount: 2, rows: [] })
  t.same(await client.query('delete from items where id = $1', [3]), { command: 'DELETE', rowCount: 1, rows: [] })
  const selected = await client.query('select id, name from items order by id', [])
  t.equal(selected.command, 'SELECT')
  t.same(selected.rows, [{ id: 1, name: 'one' }, { id: 2, name: 'TWO' }])
})

t.test('a statement that does not start with a word reports an empty command', async (t) => {
  const { pool } = sharedPool()
  const client = await pool.connect()
  t.teardown(client.release)
  t.same(await client.query('(select 1 as one)', []), { command: '', rowCount: 0, rows: [{ one: 1 }] })
})

t.test('a result without affectedRows reports a row count of 0', async (t) => {
  // PGlite's result type makes affectedRows optional; a stand-in shows the pool copes without it.
  const db = { query: async () => ({ rows: [{ x: 1 }], fields: [] }), close: async () => {} }
  const pool = new PGlitePool(db as unknown as PGlite)
  const client = await pool.connect()
  t.same(await client.query('select 1 as x', []), { command: 'SELECT', rowCount: 0, rows: [{ x: 1 }] })
  client.release()
})

t.test('a free pool leases at once and nobody waits', async (t) => {
  const { pool } = sharedPool()
  t.equal(pool.waitingCount, 0)
  t.equal(pool.leased, false)
  const client = await pool.connect()
  t.equal(pool.waitingCount, 0)
  t.equal(pool.leased, true, 'leased while held')
  client.release()
  t.equal(pool.leased, false, 'free again once released')
})

t.test('leases are exclusive: a second connect waits until the first is released', async (t) => {
  const { pool } = sharedPool()
  const first = await pool.connect()
  const second = track(pool.connect())
  await settle()
  t.notOk(second.done(), 'still waiting while the first lease is held')
  t.equal(pool.waitingCount, 1)

  first.release()
  const client = await second.promise
  t.equal(pool.waitingCount, 0)
  t.equal(pool.leased, true, 'leased to the second')
  t.same((await client.query('select 1 as one', [])).rows, [{ one: 1 }], 'the new lease works')
  client.release()
})

t.test('leases are handed out in arrival order', async (t) => {
  const { pool } = sharedPool()
  const order: string[] = []
  const first = await pool.connect()
  const waiters = ['b', 'c', 'd'].map(async (name) => {
    const client = await pool.connect()
    order.push(name)
    await settle()
    client.release()
  })
  await settle()
  t.equal(pool.waitingCount, 3)
  first.release()
  await Promise.all(waiters)
  t.same(order, ['b', 'c', 'd'])
  t.equal(pool.waitingCount, 0)
})

t.test('a transaction on one lease is not interleaved with another lease\'s queries', async (t) => {
  const { pool } = sharedPool()
  const setup = await pool.connect()
  await setup.query('create table counter (n int)', [])
  await setup.query('insert into counter values (0)', [])
  setup.release()

  const a = await pool.connect()
  await a.query('begin', [])
  await a.query('update counter set n = 1', [])
  const reader = track((async () => {
    const b = await pool.connect()
    try {
      return (await b.query('select n from counter', [])).rows
    } finally {
      b.release()
    }
  })())
  await settle()
  t.notOk(reader.done(), 'the other lease waits for the transaction')
  await a.query('rollback', [])
  a.release()
  t.same(await reader.promise, [{ n: 0 }], 'it sees the state after the rollback')
})

t.test('releasing a lease twice does not release the next holder\'s lease', async (t) => {
  const { pool } = sharedPool()
  const first = await pool.connect()
  const second = track(pool.connect())
  const third = track(pool.connect())
  first.release()
  const secondClient = await second.promise
  first.release()
  await settle()
  t.notOk(third.done(), 'the third still waits: the second holds the lease')
  t.equal(pool.waitingCount, 1)
  t.equal(pool.leased, true, 'still leased to the second')
  secondClient.release()
  const thirdClient = await third.promise
  thirdClient.release()
  t.equal(pool.waitingCount, 0)
})

t.test('end waits for the lease in use, then closes the database', async (t) => {
  const { db, pool } = await freshPool(t)
  const client = await pool.connect()
  const ended = track(pool.end())
  await settle()
  t.notOk(ended.done(), 'end waits for the lease')
  t.notOk(db.closed)

  client.release()
  await ended.promise
  t.ok(db.closed, 'the database is closed')
  await t.rejects(db.query('select 1'), 'no more queries')
})

t.test('end on an idle pool closes the database at once', async (t) => {
  const { db, pool } = await freshPool(t)
  await pool.end()
  t.ok(db.closed)
})
