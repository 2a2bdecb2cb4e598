import { sql, type Kysely } from 'kysely'
import type { RefreshTokenRepository } from '../services/ports.js'
import { compileOnce } from './compile-once.js'
import { translated } from './errors.js'
import type { Database } from './schema.js'

export function createRefreshTokenRepository (db: Kysely<Database>): RefreshTokenRepository {
  const byHash = compileOnce(db, db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', ''))
  return {
    async create (token) {
      await translated(db.insertInto('refresh_tokens').values(token).execute())
    },

    consume: async (tokenHash, now) => await translated(
      db.updateTable('refresh_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .returningAll()
        .executeTakeFirst()
    ),

    findByHash: async (tokenHash) => await translated(byHash(tokenHash)),

    async revokeFamily (familyId, now, userId) {
      let query = db.updateTable('refresh_tokens').set({ revoked_at: now })
        .where('family_id', '=', familyId).where('revoked_at', 'is', null)
      if (userId !== undefined) query = query.where('user_id', '=', userId)
      const revoked = await translated(query.returning('id').execute())
      return revoked.length > 0
    },

    async revokeAllForUser (userId, now) {
      await translated(db.updateTable('refresh_tokens').set({ revoked_at: now })
        .where('user_id', '=', userId).where('revoked_at', 'is', null).execute())
    },

    listActiveSessions: async (userId, now) => await translated(
      db.selectFrom('refresh_tokens')
        .select((eb) => [
          'family_id as id',
          eb.fn.min('created_at').as('created_at'),
          eb.fn.max('created_at').as('last_used_at'),
          eb.fn.max('expires_at').as('expires_at'),
          // The newest token of the family carries the latest client details.
          sql<string | null>`(array_agg(user_agent order by created_at desc))[1]`.as('user_agent'),
          sql<string | null>`(array_agg(ip order by created_at desc))[1]`.as('ip')
        ])
        .where('user_id', '=', userId)
        .groupBy('family_id')
        // A session is live while its newest token is: unused, unrevoked and unexpired.
        .having(sql<boolean>`bool_or(used_at is null and revoked_at is null and expires_at > ${now})`)
        .orderBy('last_used_at', 'desc')
        .execute()
    )
  }
}
