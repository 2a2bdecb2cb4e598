import { Migrator, type Kysely, type MigrationResult } from 'kysely'
import { migrations } from './migrations/index.js'

/** Applies every pending migration; throws if one fails, naming it. */
export async function migrateToLatest (db: Kysely<any>): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } })
  const { error, results = [] } = await migrator.migrateToLatest()
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName ?? 'unknown'
    throw new Error(`migration ${failed} failed`, { cause: error })
  }
  return results
}
