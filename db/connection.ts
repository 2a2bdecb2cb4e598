import { mkdir } from 'node:fs/promises'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { Config } from '../config.js'
import { PGlitePool } from './pglite-pool.js'
import { preparingPool, type ClientPool } from './prepared-statements.js'
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
      // A server that stops answering (a network black hole) never sends the statement timeout's
      // error: the client gives up a moment after the server would have.
      query_timeout: config.statementTimeoutMs + 1000,
      application_name: 'gatehouse'
    })
    // An idle client losing its server emits 'error' on the pool; unhandled, that kills the process.
    pool.on('error', onPoolError)
    const guarded = guardedPool(pool, onPoolError)
    return {
      db: new Kysely<Database>({ dialect: observeQueries(new PostgresDialect({ pool: config.preparedStatements ? preparingPool(guarded) : guarded }), observeQuery) }),
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

/**
 * The pool as Kysely uses it, with two guards for connections whose server goes away:
 * - A client checked out by a request (between two of its queries, or inside a transaction) whose
 *   backend is terminated emits 'error', and the pool listens only to idle clients: unhandled, that
 *   kills the process. It goes to `onError`; the request's next query fails (a 503) and the pool
 *   discards the client when it comes back.
 * - A client given back while a query is still in flight (it hit query_timeout: its server no
 *   longer answers) is discarded, not reused, so the next request does not wait on a dead one.
 */
export function guardedPool (pool: Pick<pg.Pool, 'connect' | 'end' | 'on'>, onError: (err: Error) => void): ClientPool {
  // From the moment the client exists: an error can come before the first checkout completes.
  pool.on('connect', (client) => { client.on('error', onError) })
  return {
    async connect () {
      const client = await pool.connect()
      const release = client.release
      client.release = (destroy?: boolean | Error) => {
        // pg 8.23 deprecated the public activeQuery getter (a DeprecationWarning on stderr at the
        // first use) and offers nothing in its place; the field behind it is what it returned.
        const inFlight = (client as unknown as { _activeQuery: unknown })._activeQuery != null
        release(destroy ?? (inFlight ? new Error('a query timed out on this connection') : undefined))
      }
      return client
    },
    end: async () => { await pool.end() }
  }
}
