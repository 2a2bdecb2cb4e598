import {
  DatabaseError, DatabaseUnavailableError, EmailAlreadyExistsError, UsernameAlreadyExistsError
} from '../services/errors.js'

// SQLSTATE classes that mean "the database is not available right now", not "the query is wrong":
// 08 connection exception, 53 insufficient resources, 57 operator intervention (57014 is a
// statement timeout, 57P01 an admin shutdown), 40001/40P01 serialization failure / deadlock.
const UNAVAILABLE_SQLSTATE = /^(08|53|57|40001|40P01)/
// Node's socket errors (ECONNREFUSED, ETIMEDOUT, ...), not its programming errors (ERR_INVALID_ARG_TYPE).
const SOCKET_ERROR = /^E[A-Z]+$/
// node-postgres's pool giving up waiting for a free connection, and dropped connections.
// A prepared statement gone stale under a migration: its connection is replaced, so a retry works.
const UNAVAILABLE_MESSAGE = /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|ECONNRESET|EPIPE|not queryable|Query read timeout|cached plan must not change result type/i

const UNIQUE_CONSTRAINT_ERRORS: Record<string, new () => Error> = {
  users_email_key: EmailAlreadyExistsError,
  users_username_lower_key: UsernameAlreadyExistsError
}

/** Turns a driver error into a domain error: duplicates become 409s, outages 503s, the rest 500s. */
export function translateDatabaseError (err: unknown): Error {
  const e = (err ?? {}) as { code?: unknown, constraint?: unknown, message?: unknown }
  const code = typeof e.code === 'string' ? e.code : ''
  if (code === '23505' && typeof e.constraint === 'string') {
    const DomainError = UNIQUE_CONSTRAINT_ERRORS[e.constraint]
    if (DomainError !== undefined) return new DomainError()
  }
  if (UNAVAILABLE_SQLSTATE.test(code) || SOCKET_ERROR.test(code) || UNAVAILABLE_MESSAGE.test(String(e.message))) {
    return new DatabaseUnavailableError(undefined, { cause: err })
  }
  return new DatabaseError(undefined, { cause: err })
}

/** Awaits a query, turning any driver error into a domain error. */
export async function translated<T> (query: Promise<T>): Promise<T> {
  try {
    return await query
  } catch (err) {
    throw translateDatabaseError(err)
  }
}
