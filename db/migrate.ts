import { ConfigError, loadConfig } from '../config.js'
import { openDatabase } from './connection.js'
import { migrateToLatest } from './migrator.js'

/** `npm run migrate`: applies pending migrations to the configured database, then exits. */
try {
  const { config } = loadConfig()
  const { db, backend } = await openDatabase(config.database, (err) => { process.stderr.write(`${err.message}\n`) })
  try {
    const results = await migrateToLatest(db)
    for (const r of results) process.stdout.write(`${r.migrationName}: ${r.status}\n`)
    process.stdout.write(`${backend}: ${results.length === 0 ? 'already up to date' : `${results.length} migration(s) applied`}\n`)
  } finally {
    await db.destroy()
  }
} catch (err) {
  process.stderr.write(`migrate failed: ${err instanceof ConfigError ? err.message : String((err as Error).stack)}\n`)
  process.exitCode = 1
}
