import type { PGlite } from '@electric-sql/pglite'

interface PooledClient {
  query: (sql: string, parameters: unknown[]) => Promise<{ command: string, rowCount: number, rows: unknown[] }>
  release: () => void
}

/**
 * Makes one PGlite instance look like the part of a node-postgres Pool that Kysely's
 * PostgresDialect uses, so both backends share one dialect and one query compiler.
 *
 * PGlite is a single connection: a transaction on it would interleave with any other query,
 * so a "connection" is an exclusive lease, handed out one at a time in arrival order.
 */
export class PGlitePool {
  readonly #db: PGlite
  #tail: Promise<void> = Promise.resolve()
  #waiting = 0
  #leased = false

  constructor (db: PGlite) {
    this.#db = db
  }

  /** Leases waiting for the single connection (the embedded equivalent of pool.waitingCount). */
  get waitingCount (): number {
    return this.#waiting
  }

  /** Whether the single connection is lent out right now. */
  get leased (): boolean {
    return this.#leased
  }

  async connect (): Promise<PooledClient> {
    let release!: () => void
    const previous = this.#tail
    this.#tail = new Promise<void>((resolve) => { release = resolve })
    this.#waiting++
    await previous
    this.#waiting--
    this.#leased = true
    let released = false
    return {
      query: async (sql, parameters) => {
        const result = await this.#db.query(sql, parameters)
        return { command: commandOf(sql), rowCount: result.affectedRows ?? 0, rows: result.rows }
      },
      release: () => {
        if (released) return
        released = true
        this.#leased = false
        release()
      }
    }
  }

  async end (): Promise<void> {
    await this.#tail
    await this.#db.close()
  }
}

/** node-postgres reports the statement's command tag; PGlite does not, so read it off the SQL. */
function commandOf (sql: string): string {
  return /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? ''
}
