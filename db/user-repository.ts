import { sql, type Kysely, type SelectQueryBuilder } from 'kysely'
import type { KeysetPosition, UserPage, UserRepository } from '../services/ports.js'
import { compileOnce } from './compile-once.js'
import { translated } from './errors.js'
import type { Database } from './schema.js'

// created_at rendered in UTC with microseconds, so a cursor round-trips without losing precision
// (a JS Date keeps only milliseconds, and a truncated cursor would skip or repeat rows).
const createdAtText = sql<string>`to_char(users.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
// What Date#toISOString prints: UTC, milliseconds truncated (node-postgres truncates them too).
const isoText = (column: 'created_at' | 'updated_at') => sql<string>`to_char(${sql.ref(`users.${column}`)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`

/** The only place that knows users live in SQL. */
export function createUserRepository (db: Kysely<Database>): UserRepository {
  const users = () => db.selectFrom('users').selectAll()
  // What the bulk reads return: no password hash, timestamps printed by PostgreSQL (no Date per row).
  const publicUsers = () => db.selectFrom('users')
    .select(['id', 'email', 'username', 'role', isoText('created_at').as('created_at'), isoText('updated_at').as('updated_at')])
  const byId = compileOnce(db, users().where('id', '=', ''))
  const byEmail = compileOnce(db, users().where('email', '=', ''))
  return {
    create: async (user) => await translated(db.insertInto('users').values(user).returningAll().executeTakeFirstOrThrow()),
    findById: async (id) => await translated(byId(id)),
    findByEmail: async (email) => await translated(byEmail(email)),
    // One round trip for any number of ids (`id = any($1)` uses the primary key), never one query per id.
    findByIds: async (ids) => await translated(publicUsers().where('id', '=', sql<string>`any(${ids}::uuid[])`).execute()),
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
    list: async (limit, after) => await keysetPage(users(), limit, after),
    listPublic: async (limit, after) => await keysetPage(publicUsers(), limit, after)
  }
}

/** One page in (created_at desc, id desc) order after `after`, and where the next one starts. */
async function keysetPage<Row extends { id: string }> (
  select: SelectQueryBuilder<Database, 'users', Row>, limit: number, after: KeysetPosition | undefined
): Promise<UserPage<Row>> {
  let query = select.select(createdAtText.as('created_at_text'))
    .orderBy('users.created_at', 'desc').orderBy('users.id', 'desc')
    .limit(limit + 1)
  if (after !== undefined) {
    query = query.where(sql<boolean>`(users.created_at, users.id) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`)
  }
  const found = await translated(query.execute())
  const page = found.slice(0, limit)
  const last = page.at(-1)
  const next: KeysetPosition | null = found.length > limit && last !== undefined
    ? { createdAt: last.created_at_text, id: last.id }
    : null
  // What is left after taking created_at_text off is the Row the caller selected.
  return { rows: page.map(({ created_at_text: _, ...row }) => row as unknown as Row), next }
}
