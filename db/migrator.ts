import { Migrator, type Kysely, type Migration, type MigrationResult } from 'kysely'
import { migrations } from './migrations/index.js'

/** Applies every pending migration; throws if one fails, naming it. */
export async function migrateToLatest (db: Kysely<any>, all: Record<string, Migration> = migrations): Promise<MigrationResult[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => all } })
  const { error, results } = await migrator.migrateToLatest()
  if (error !== undefined || results === undefined) {
    // Results name the failing migration; there are none when the database could not be reached.
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new Error(`migrations failed${failed === undefined ? '' : ` at ${failed}`}: ${String(error)}`, { cause: error })
  }
  return results
}
