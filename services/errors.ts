/**
 * Domain errors. Each carries the HTTP status and the stable machine-readable code it maps to,
 * so the one error handler needs no table of its own and a new error cannot be forgotten there.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number
  abstract readonly code: string
}

function domainError (status: number, code: string, defaultMessage: string) {
  return class extends DomainError {
    readonly status = status
    readonly code = code
    constructor (message = defaultMessage, options?: ErrorOptions) {
      super(message, options)
      // Logs and stack traces name the class (EmailAlreadyExistsError), not just "Error".
      this.name = new.target.name
    }
  }
}

export class InvalidEmailError extends domainError(400, 'INVALID_EMAIL', 'The email address is not valid') {}
export class InvalidCursorError extends domainError(400, 'INVALID_CURSOR', 'The cursor is not one this service issued') {}
export class CurrentPasswordRequiredError extends domainError(400, 'CURRENT_PASSWORD_REQUIRED', 'Changing your own email or password needs current_password') {}
export class InvalidCredentialsError extends domainError(401, 'INVALID_CREDENTIALS', 'Email or password is incorrect') {}
export class UnauthorizedError extends domainError(401, 'UNAUTHORIZED', 'A valid bearer token is required') {}
export class InvalidCurrentPasswordError extends domainError(403, 'INVALID_CURRENT_PASSWORD', 'current_password is incorrect') {}
export class ForbiddenError extends domainError(403, 'FORBIDDEN', 'You may not do this') {}
export class NotFoundError extends domainError(404, 'NOT_FOUND', 'No such user') {}
export class EmailAlreadyExistsError extends domainError(409, 'EMAIL_ALREADY_EXISTS', 'An account with this email already exists') {}
export class UsernameAlreadyExistsError extends domainError(409, 'USERNAME_ALREADY_EXISTS', 'This username is taken') {}
/** The database could not be reached in time, or cancelled a query that ran too long. */
export class DatabaseUnavailableError extends domainError(503, 'SERVICE_UNAVAILABLE', 'The database is unavailable; retry shortly') {}
/** More password checks waiting than the service will queue (a login storm): retry shortly. */
export class HashingBusyError extends domainError(503, 'SERVICE_UNAVAILABLE', 'Too many passwords are being checked at once; retry shortly') {}
/** Any other database failure: a bug or a broken schema, never the caller's fault. */
export class DatabaseError extends domainError(500, 'INTERNAL_ERROR', 'Database failure') {}
export class HashingError extends domainError(500, 'INTERNAL_ERROR', 'Password hashing failed') {}
export class InvalidRefreshTokenError extends domainError(401, 'INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired or revoked; sign in again') {}
export class WeakPasswordError extends domainError(400, 'WEAK_PASSWORD', 'This password is too common or too close to the email or username') {}

/** Too many attempts; `retryAfterSeconds` becomes the Retry-After header. */
export class TooManyRequestsError extends domainError(429, 'TOO_MANY_REQUESTS', 'Too many attempts; wait before trying again') {
  retryAfterSeconds = 1
  static after (seconds: number): TooManyRequestsError {
    const err = new TooManyRequestsError()
    err.retryAfterSeconds = Math.max(1, Math.ceil(seconds))
    return err
  }
}
