import { sql, type Kysely, type Transaction } from 'kysely'
import type { RefreshTokenRepository } from '../services/ports.js'
import { compileOnce } from './compile-once.js'
import { translated } from './errors.js'
import type { Database } from './schema.js'

/**
 * Every change to a user's sessions takes a lock on the user's row first: issuing a token a shared
 * one (FOR SHARE), revoking an exclusive one (FOR NO KEY UPDATE, which also waits for a password
 * change or a delete in progress). So a revocation either runs before an issue, which then sees the
 * revoked parent or the missing user and refuses, or after it, and its UPDATE (a new statement,
 * with a fresh snapshot) sees and revokes the new token. No family is left half-revoked.
 */
const lockUserForRevoke = async (trx: Transaction<Database>, userId: string): Promise<void> => {
  await trx.selectFrom('users').select('id').where('id', '=', userId).forNoKeyUpdate().execute()
}

export function createRefreshTokenRepository (db: Kysely<Database>): RefreshTokenRepository {
  const byHash = compileOnce(db, db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', ''))
  return {
    create: async (token, parentId) => await translated(db.transaction().execute(async (trx) => {
      const owner = await trx.selectFrom('users').select('id').where('id', '=', token.user_id).forShare().executeTakeFirst()
      if (owner === undefined) return false
      if (parentId !== undefined) {
        const parent = await trx.selectFrom('refresh_tokens').select('revoked_at').where('id', '=', parentId).executeTakeFirst()
        if (parent?.revoked_at !== null) return false
      }
      await trx.insertInto('refresh_tokens').values(token).execute()
      return true
    })),

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

    revokeFamily: async (familyId, now, userId) => await translated(db.transaction().execute(async (trx) => {
      let owner = trx.selectFrom('refresh_tokens').select('user_id').where('family_id', '=', familyId)
      if (userId !== undefined) owner = owner.where('user_id', '=', userId)
      const found = await owner.limit(1).executeTakeFirst()
      if (found === undefined) return false
      await lockUserForRevoke(trx, found.user_id)
      const revoked = await trx.updateTable('refresh_tokens').set({ revoked_at: now })
        .where('family_id', '=', familyId).where('revoked_at', 'is', null).returning('id').execute()
      return revoked.length > 0
    })),

    revokeAllForUser: async (userId, now) => {
      await translated(db.transaction().execute(async (trx) => {
        await lockUserForRevoke(trx, userId)
        await trx.updateTable('refresh_tokens').set({ revoked_at: now })
          .where('user_id', '=', userId).where('revoked_at', 'is', null).execute()
      }))
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
