import { Type, type Static, type TSchema } from 'typebox'
import { ROLES } from '../db/schema.js'

/** Shared pieces of the API contract; each becomes a component of the OpenAPI document. */

// format: 'uuid' alone also accepts 'urn:uuid:…', which PostgreSQL refuses (a 500); the pattern pins the plain form.
export const PLAIN_UUID = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
export const Id = Type.String({ format: 'uuid', pattern: PLAIN_UUID, description: 'User id (UUIDv7)' })
export const IdParams = Type.Object({ id: Id })

export const Email = Type.String({
  minLength: 3,
  maxLength: 254,
  description: 'An email address. Surrounding whitespace is trimmed and it is stored lower-cased.',
  examples: ['ada@example.com']
})
export const Username = Type.String({
  minLength: 3,
  maxLength: 32,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: 'Unique regardless of letter case.',
  examples: ['ada_l']
})
// NIST SP 800-63B: length is the only composition rule; 128 caps the cost of hashing.
export const Password = Type.String({ minLength: 8, maxLength: 128, writeOnly: true, examples: ['correct horse battery staple'] })
export const Role = Type.Enum(ROLES, { description: 'user or admin' })

export const User = Type.Object({
  id: Id,
  email: Type.String({ description: 'Normalised (trimmed, lower-cased) email address' }),
  username: Type.String(),
  role: Role,
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' })
}, { $id: 'User', additionalProperties: false, description: 'A user account. Never includes the password or its hash.' })

/**
 * The User component by reference, typed for handlers: they hand it Dates (serialized as ISO 8601),
 * or, from the bulk reads, the same text already printed by PostgreSQL.
 */
export const UserRef = Type.Unsafe<Omit<Static<typeof User>, 'created_at' | 'updated_at'> & { created_at: Date | string, updated_at: Date | string }>(Type.Ref('User'))

export const Problem = Type.Object({
  type: Type.String({ description: 'URI naming the kind of problem', examples: ['urn:gatehouse:problem:validation-failed'] }),
  title: Type.String(),
  status: Type.Integer({ minimum: 400, maximum: 599 }),
  detail: Type.String(),
  code: Type.String({
    description: 'Stable machine-readable code: VALIDATION_FAILED, MALFORMED_JSON, BAD_REQUEST, INVALID_EMAIL, INVALID_CURSOR, ' +
      'CURRENT_PASSWORD_REQUIRED, INVALID_CREDENTIALS, UNAUTHORIZED, INVALID_CURRENT_PASSWORD, FORBIDDEN, NOT_FOUND, ' +
      'METHOD_NOT_ALLOWED, REQUEST_TIMEOUT, EMAIL_ALREADY_EXISTS, USERNAME_ALREADY_EXISTS, PAYLOAD_TOO_LARGE, ' +
      'UNSUPPORTED_MEDIA_TYPE, TOO_MANY_REQUESTS, INTERNAL_ERROR, SERVICE_UNAVAILABLE, INVALID_REFRESH_TOKEN, WEAK_PASSWORD, ' +
      'HEADERS_TOO_LARGE'
  }),
  instance: Type.String({ description: 'Identifies this occurrence: the request id, as in the x-request-id header' }),
  errors: Type.Optional(Type.Array(Type.Object({
    in: Type.String({ description: 'body, querystring, params or headers' }),
    field: Type.String(),
    message: Type.String()
  }), { description: 'For VALIDATION_FAILED: each field that was refused, and why' }))
}, { $id: 'Problem', description: 'An RFC 9457 problem details object' })
export type ProblemBody = Static<typeof Problem>

const ERROR_DESCRIPTIONS = {
  400: 'The request is malformed or a field is invalid',
  401: 'Missing, invalid or expired bearer token, or wrong credentials',
  403: 'Authenticated, but not allowed to do this',
  404: 'No such resource',
  409: 'Conflicts with an existing account',
  413: 'The body is larger than the configured limit',
  415: 'The body is not JSON',
  429: 'Too many attempts; Retry-After says when to try again',
  500: 'Unexpected failure; details are in the service log, not here',
  503: 'A dependency (the database) is unavailable or the service is overloaded; retry later'
} as const
type ErrorStatus = keyof typeof ERROR_DESCRIPTIONS

/**
 * Error responses for a route: problem+json bodies for each status named, plus the two any route
 * can give (500, and 503 from load shedding or a database outage). Routes that take input name 400.
 * A POST, PATCH or DELETE route parses whatever body is sent, even without a body schema of its own,
 * so it names 400 (malformed JSON), 413 and 415 as well.
 */
export function problems (...statuses: ErrorStatus[]): Record<number, TSchema> {
  const all = [...new Set<ErrorStatus>([...statuses, 500, 503])].sort()
  return Object.fromEntries(all.map((status) => [status, {
    description: ERROR_DESCRIPTIONS[status],
    content: { 'application/problem+json': { schema: Type.Ref('Problem') } }
  } as unknown as TSchema]))
}

export const bearerAuth = [{ bearerAuth: [] }]
/** Said explicitly on open operations, so a reader (and the linters) can tell open from forgotten. */
export const noAuth = []
