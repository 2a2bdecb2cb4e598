import { mkdir } from 'node:fs/promises'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Config } from '../config.js'
import { PGlitePool } from './pglite-pool.js'
import { preparingPool } from './prepared-statements.js'
import { observeQueries, type QueryObserver } from './query-observer.js'
import type { Database } from './schema.js'

export interface DatabaseHandle {
  db: Kysely<Database>
  backend: 'postgres' | 'pglite'
  /** Connection requests queued for the pool: the signal load shedding watches. */
  waitingCount: () => number
  /** Open connections, and how many of them are idle. */
  connections: () => { total: number, idle: number }
}

type DatabaseConfig = Config['database']

/**
 * Opens the configured backend: a node-postgres pool when a URL is given, embedded PGlite otherwise.
 * `observeQuery`, when given, is told about every statement (tracing makes spans of them).
 */
export async function openDatabase (config: DatabaseConfig, onPoolError: (err: Error) => void, observeQuery?: QueryObserver): Promise<DatabaseHandle> {
  if (config.url !== undefined) {
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize,
      connectionTimeoutMillis: config.connectionTimeoutMs,
      statement_timeout: config.statementTimeoutMs,
      // A transaction left open by a crashed request must not hold row locks forever.
      idle_in_transaction_session_timeout: config.statementTimeoutMs * 2,
      application_name: 'gatehouse'
    })
    // An idle client losing its server emits 'error' on the pool; unhandled, that kills the process.
    pool.on('error', onPoolError)
    return {
      db: new Kysely<Database>({ dialect: observeQueries(new PostgresDialect({ pool: config.preparedStatements ? preparingPool(pool) : pool }), observeQuery) }),
      backend: 'postgres',
      waitingCount: () => pool.waitingCount,
      connections: () => ({ total: pool.totalCount, idle: pool.idleCount })
    }
  }
  const { PGlite } = await import('@electric-sql/pglite')
  const dataDir = config.pgliteDataDir
  if (!dataDir.startsWith('memory://')) await mkdir(dataDir, { recursive: true })
  const pglite = await PGlite.create(dataDir)
  const pool = new PGlitePool(pglite)
  return {
    db: new Kysely<Database>({ dialect: observeQueries(new PostgresDialect({ pool: pool as unknown as pg.Pool }), observeQuery) }),
    backend: 'pglite',
    waitingCount: () => pool.waitingCount,
    connections: () => ({ total: 1, idle: pool.leased ? 0 : 1 })
  }
}
