import type { PostgresPool, PostgresPoolClient } from 'kysely'
import type pg from 'pg'

/** A pool handing out node-postgres clients: pg.Pool itself, or one wrapped by guardedPool. */
export interface ClientPool {
  connect: () => Promise<pg.PoolClient>
  end: () => Promise<void>
}

// PostgreSQL's answer when a prepared statement's result columns changed under it (a migration
// added a column that a `select *` returns): the statement must be prepared again.
const STALE_PLAN = /cached plan must not change result type/

/**
 * A pool whose connections run each distinct parameterised statement as a named prepared
 * statement, so that PostgreSQL parses and plans it once per connection instead of on every
 * request: for a lookup by primary key that halved PostgreSQL's CPU time per request.
 *
 * Names come from the SQL text, so the same text always has the same name. Only `maxStatements`
 * distinct texts are named; any others run unnamed, so that a query builder producing endless
 * variants cannot grow every connection's statement cache without bound. A connection whose
 * statement went stale (see STALE_PLAN) is closed when released: its replacement prepares afresh.
 */
export function preparingPool (pool: ClientPool, maxStatements = 1000): PostgresPool {
  const names = new Map<string, string>()
  const nameOf = (sql: string): string | undefined => {
    let name = names.get(sql)
    if (name === undefined && names.size < maxStatements) {
      name = `gatehouse_${names.size + 1}`
      names.set(sql, name)
    }
    return name
  }
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>()
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let stale = false
    const query = async (sql: string, values: readonly unknown[]): Promise<pg.QueryResult> => {
      // Statements without parameters (migrations' DDL, several statements in one text) keep
      // the simple protocol they had.
      const name = values.length > 0 ? nameOf(sql) : undefined
      try {
        return name === undefined
          ? await client.query(sql, [...values])
          : await client.query({ name, text: sql, values: [...values] })
      } catch (err) {
        if (STALE_PLAN.test(String((err as Error).message))) stale = true
        throw err
      }
    }
    return {
      // Kysely's result type names fewer commands than node-postgres's, which it is given anyway.
      query: query as unknown as PostgresPoolClient['query'],
      release: (destroy?: boolean) => { client.release(destroy === true || stale) }
    }
  }
  return {
    connect: async () => {
      const client = await pool.connect()
      let wrapper = wrappers.get(client)
      if (wrapper === undefined) {
        wrapper = wrap(client)
        wrappers.set(client, wrapper)
      }
      return wrapper
    },
    end: async () => { await pool.end() }
  }
}
