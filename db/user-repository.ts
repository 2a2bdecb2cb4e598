import { sql, type Kysely } from 'kysely'
import type { KeysetPosition, UserRepository } from '../services/ports.js'
import { translated } from './errors.js'
import type { Database } from './schema.js'

// created_at rendered in UTC with microseconds, so a cursor round-trips without losing precision
// (a JS Date keeps only milliseconds, and a truncated cursor would skip or repeat rows).
const createdAtText = sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** The only place that knows users live in SQL. */
export function createUserRepository (db: Kysely<Database>): UserRepository {
  const users = () => db.selectFrom('users').selectAll()
  return {
    create: async (user) => await translated(db.insertInto('users').values(user).returningAll().executeTakeFirstOrThrow()),
    findById: async (id) => await translated(users().where('id', '=', id).executeTakeFirst()),
    findByEmail: async (email) => await translated(users().where('email', '=', email).executeTakeFirst()),
    // One round trip for any number of ids (`id = any($1)` uses the primary key), never one query per id.
    findByIds: async (ids) => await translated(users().where('id', '=', sql<string>`any(${ids}::uuid[])`).execute()),
    update: async (id, patch, options = {}) => {
      const { endSessionsAt } = options
      const updateUser = async (trx: Kysely<Database>) => await trx.updateTable('users').set(patch).where('id', '=', id).returningAll().executeTakeFirst()
      if (endSessionsAt === undefined) return await translated(updateUser(db))
      return await translated(db.transaction().execute(async (trx) => {
        const row = await updateUser(trx)
        if (row !== undefined) {
          await trx.updateTable('refresh_tokens').set({ revoked_at: endSessionsAt })
            .where('user_id', '=', id).where('revoked_at', 'is', null).execute()
        }
        return row
      }))
    },
    delete: async (id) => {
      const deleted = await translated(db.deleteFrom('users').where('id', '=', id).returning('id').executeTakeFirst())
      return deleted !== undefined
    },
    list: async (limit, after) => {
      let query = users().select(createdAtText.as('created_at_text'))
        .orderBy('created_at', 'desc').orderBy('id', 'desc')
        .limit(limit + 1)
      if (after !== undefined) {
        query = query.where(sql<boolean>`(created_at, id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`)
      }
      const found = await translated(query.execute())
      const page = found.slice(0, limit)
      const last = page.at(-1)
      const next: KeysetPosition | null = found.length > limit && last !== undefined
        ? { createdAt: last.created_at_text, id: last.id }
        : null
      return { rows: page.map(({ created_at_text: _, ...row }) => row), next }
    }
  }
}
