import type { Migration } from 'kysely'
import * as createUsers from './0001-create-users.js'
import * as createRefreshTokens from './0002-create-refresh-tokens.js'

/**
 * Every migration, in order. Listed explicitly rather than read from the directory so the same
 * code runs from TypeScript sources (tests) and compiled JavaScript (production).
 * Never edit one that has shipped: add the next file.
 */
export const migrations: Record<string, Migration> = {
  '0001-create-users': createUsers,
  '0002-create-refresh-tokens': createRefreshTokens
}
