import type { CompiledQuery, Kysely } from 'kysely'

interface Compilable<R> { compile: () => CompiledQuery<R> }

/**
 * A query of one parameter, built and compiled once; each call only binds the value. Building
 * and compiling a Kysely query cost more than the rest of a primary-key lookup on the Node side,
 * and the hottest reads (a user by id or email) run on almost every request.
 */
export function compileOnce<DB, R> (db: Kysely<DB>, query: Compilable<R>): (value: unknown) => Promise<R | undefined> {
  const compiled = query.compile()
  // Built with one value for the one parameter, so a query that compiled to more is a mistake.
  if (compiled.parameters.length !== 1) throw new Error(`compileOnce needs a query with one parameter, got ${compiled.parameters.length}: ${compiled.sql}`)
  return async (value) => (await db.executeQuery<R>({ ...compiled, parameters: [value] })).rows[0]
}
