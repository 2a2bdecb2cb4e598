import type { CompiledQuery, DatabaseConnection, Dialect, QueryResult } from 'kysely'

/**
 * Told about each statement as it starts (its SQL text, with `$n` placeholders, never the
 * parameter values); returns what to call when it ends, with the error if it failed.
 */
export type QueryObserver = (sql: string) => (error?: unknown) => void

/** The dialect as given, or, with an observer, one whose every statement is reported to it. */
export function observeQueries (dialect: Dialect, observe: QueryObserver | undefined): Dialect {
  if (observe === undefined) return dialect
  const observed = new WeakSet<DatabaseConnection>()
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver: () => {
      const driver = dialect.createDriver()
      const acquire = driver.acquireConnection.bind(driver)
      driver.acquireConnection = async () => {
        const connection = await acquire()
        // Patched in place, not wrapped: the driver calls private methods on its own connection
        // objects (release, discard) and reuses them per pooled client, so patch each one once.
        // Transaction control (begin, commit, savepoints) goes through executeQuery too.
        if (!observed.has(connection)) {
          const execute = connection.executeQuery.bind(connection)
          connection.executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
            const end = observe(query.sql)
            try {
              const result = await execute<R>(query)
              end()
              return result
            } catch (err) {
              end(err)
              throw err
            }
          }
          observed.add(connection)
        }
        return connection
      }
      return driver
    }
  }
}
