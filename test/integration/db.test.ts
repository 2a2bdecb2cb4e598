import { Migrator, NO_MIGRATIONS } from 'kysely'
import t from 'tap'
import { v7 as uuidv7 } from 'uuid'
import { migrations } from '../../db/migrations/index.js'
import { createUserRepository } from '../../db/user-repository.js'
import { build } from '../helper.js'

t.test('database layer on the configured backend', async (t) => {
  const app = await build(t)
  const { db } = app.database
  const repo = createUserRepository(db)

  t.test('reports no one waiting for a connection when idle', async (t) => {
    t.equal(app.database.waitingCount(), 0)
  })

  t.test('keyset pages are exact even when rows share a created_at, to the microsecond', async (t) => {
    const at = new Date('2030-01-01T00:00:00.000Z')
    const ids = Array.from({ length: 5 }, () => uuidv7())
    for (const id of ids) {
      await repo.create({ id, email: `${id}@tie.example.com`, username: `tie_${id.slice(-12)}`, password_hash: 'x', role: 'user', created_at: at })
    }
    // Microseconds a JS Date cannot hold: a cursor that dropped them would skip or repeat rows.
    const micro = uuidv7()
    await repo.create({ id: micro, email: `${micro}@tie.example.com`, username: `micro_${micro.slice(-12)}`, password_hash: 'x', role: 'user' })
    const { sql } = await import('kysely')
    await sql`update users set created_at = ${at}::timestamptz + interval '1 microsecond' where id = ${micro}`.execute(db)

    const seen: string[] = []
    let page = await repo.list(2, undefined)
    seen.push(...page.rows.map((r) => r.id))
    while (page.next !== null) {
      page = await repo.list(2, page.next)
      seen.push(...page.rows.map((r) => r.id))
    }
    t.same(seen, [micro, ...[...ids].reverse()], 'newest first, ties broken by id, nothing skipped or repeated')
  })

  t.test('the keyset query is served by the (created_at, id) index', async (t) => {
    const { sql } = await import('kysely')
    // On a table this small the planner would rightly scan it; forbid that, on one connection, to see the index is usable.
    const plan = await db.transaction().execute(async (tx) => {
      await sql`set local enable_seqscan = off`.execute(tx)
      return await sql<{ 'QUERY PLAN': string }>`explain select * from users where (created_at, id) < (now(), ${uuidv7()}::uuid) order by created_at desc, id desc limit 21`.execute(tx)
    })
    t.match(plan.rows.map((r) => r['QUERY PLAN']).join('\n'), /users_created_at_id_idx/)
  })

  t.test('migrations go down and up again cleanly', async (t) => {
    const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
    const down = await migrator.migrateTo(NO_MIGRATIONS)
    t.equal(down.error, undefined)
    t.same(down.results?.map((r) => `${r.migrationName} ${r.direction} ${r.status}`), ['0002-create-refresh-tokens Down Success', '0001-create-users Down Success'])
    const up = await migrator.migrateToLatest()
    t.equal(up.error, undefined)
    t.same(up.results?.map((r) => `${r.migrationName} ${r.direction} ${r.status}`), ['0001-create-users Up Success', '0002-create-refresh-tokens Up Success'])
  })
})
