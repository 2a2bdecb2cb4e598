import t from 'tap'
import { translateDatabaseError } from '../../db/errors.js'
import {
  DatabaseError, DatabaseUnavailableError, EmailAlreadyExistsError, UsernameAlreadyExistsError
} from '../../services/errors.js'

/** An error shaped like the ones node-postgres and PGlite throw. */
function driverError (message: string, fields: { code?: unknown, constraint?: unknown } = {}): Error {
  return Object.assign(new Error(message), fields)
}

t.test('a unique violation on users_email_key is EmailAlreadyExistsError', async (t) => {
  const err = translateDatabaseError(driverError('duplicate key value violates unique constraint "users_email_key"', { code: '23505', constraint: 'users_email_key' }))
  t.type(err, EmailAlreadyExistsError)
  t.match(err, { status: 409, code: 'EMAIL_ALREADY_EXISTS' })
})

t.test('a unique violation on users_username_lower_key is UsernameAlreadyExistsError', async (t) => {
  const err = translateDatabaseError(driverError('duplicate key', { code: '23505', constraint: 'users_username_lower_key' }))
  t.type(err, UsernameAlreadyExistsError)
  t.match(err, { status: 409, code: 'USERNAME_ALREADY_EXISTS' })
})

t.test('a unique violation on any other constraint is a DatabaseError', async (t) => {
  const original = driverError('duplicate key', { code: '23505', constraint: 'users_pkey' })
  const err = translateDatabaseError(original)
  t.type(err, DatabaseError)
  t.match(err, { status: 500, code: 'INTERNAL_ERROR' })
  t.equal(err.cause, original, 'the driver error is kept as the cause')
})

t.test('a unique violation without a constraint name is a DatabaseError', async (t) => {
  t.type(translateDatabaseError(driverError('duplicate key', { code: '23505' })), DatabaseError)
})

const unavailable: Array<[string, Error]> = [
  ['57014, a statement timeout', driverError('canceling statement due to statement timeout', { code: '57014' })],
  ['57P01, an admin shutdown', driverError('terminating connection due to administrator command', { code: '57P01' })],
  ['08006, a connection failure', driverError('connection failure', { code: '08006' })],
  ['53300, too many connections', driverError('sorry, too many clients already', { code: '53300' })],
  ['40001, a serialization failure', driverError('could not serialize access', { code: '40001' })],
  ['40P01, a deadlock', driverError('deadlock detected', { code: '40P01' })],
  ['ECONNREFUSED from the socket', driverError('connect ECONNREFUSED 127.0.0.1:5432', { code: 'ECONNREFUSED' })],
  // Node 20 tries every address of a host name and reports failing them all with an empty message.
  ['ECONNREFUSED from every address, with no message', Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' })],
  ['ETIMEDOUT from the socket', driverError('connect ETIMEDOUT 10.0.0.5:5432', { code: 'ETIMEDOUT' })],
  ['ECONNRESET from the socket', driverError('read ECONNRESET', { code: 'ECONNRESET' })],
  ['the pool timing out waiting for a connection', driverError('timeout exceeded when trying to connect')],
  ['a connection terminated under a query', driverError('Connection terminated unexpectedly')]
]
for (const [what, original] of unavailable) {
  t.test(`${what} is DatabaseUnavailableError (503)`, async (t) => {
    const err = translateDatabaseError(original)
    t.type(err, DatabaseUnavailableError)
    t.match(err, { status: 503, code: 'SERVICE_UNAVAILABLE' })
    t.equal(err.cause, original, 'the driver error is kept as the cause')
  })
}

const failures: Array<[string, unknown]> = [
  ['a syntax error (42601)', driverError('syntax error at or near "selec"', { code: '42601' })],
  ['a missing table (42P01)', driverError('relation "users" does not exist', { code: '42P01' })],
  ['a check violation (23514)', driverError('violates check constraint "users_role_check"', { code: '23514' })],
  ['another class 40 code (40002)', driverError('integrity constraint violation', { code: '40002' })],
  ['an error with no code', driverError('no result')],
  ['an error with a numeric code', driverError('odd driver', { code: 57014 })],
  ['a thrown string', 'something broke']
]
for (const [what, original] of failures) {
  t.test(`${what} is DatabaseError (500)`, async (t) => {
    const err = translateDatabaseError(original)
    t.type(err, DatabaseError)
    t.match(err, { status: 500, code: 'INTERNAL_ERROR', message: 'Database failure' })
    t.equal(err.cause, original, 'the original is kept as the cause')
  })
}

t.test('a thrown non-object (null, undefined) is a plain database failure, not a crash', async (t) => {
  for (const thrown of [null, undefined]) {
    const err = translateDatabaseError(thrown)
    t.type(err, DatabaseError)
  }
})

t.test('Node programming errors are not mistaken for outages', async (t) => {
  const err = translateDatabaseError(Object.assign(new TypeError('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' }))
  t.type(err, DatabaseError)
  t.equal((err as DatabaseError).status, 500)
})
