import { Kysely, PostgresDialect } from 'kysely'
import type pg from 'pg'
import t from 'tap'
import { compileOnce } from '../../db/compile-once.js'

interface DB { users: { id: string, email: string } }

t.test('compiles once and binds each call\'s value; a query of more than one parameter is refused', async (t) => {
  const sent: Array<[string, unknown[]]> = []
  const client = {
    query: async (sql: string, values: unknown[]) => { sent.push([sql, values]); return { rows: [{ id: values[0], email: 'a@example.com' }], command: 'SELECT' } },
    release: () => {}
  }
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool: { connect: async () => client, end: async () => {} } as unknown as pg.Pool }) })
  const byId = compileOnce(db, db.selectFrom('users').selectAll().where('id', '=', ''))
  t.same(await byId('u1'), { id: 'u1', email: 'a@example.com' })
  t.same(await byId('u2'), { id: 'u2', email: 'a@example.com' })
  t.same(sent, [['select * from "users" where "id" = $1', ['u1']], ['select * from "users" where "id" = $1', ['u2']]])

  t.throws(() => compileOnce(db, db.selectFrom('users').selectAll().where('id', '=', '').where('email', '=', '')), /one parameter, got 2/)
})
