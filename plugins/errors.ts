import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { Problem, type ProblemBody } from '../routes/schemas.js'
import { DomainError, TooManyRequestsError } from '../services/errors.js'
import { SECURITY_HEADERS } from './security.js'

type FieldError = NonNullable<ProblemBody['errors']>[number]
// Ajv's error objects; with Ajv's default options every one has a message.
interface ValidationIssue { instancePath: string, keyword: string, message: string, params: Record<string, unknown> }

// Codes for errors Fastify itself raises, by status; anything else of that status gets the generic code.
const BY_STATUS = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
  429: 'TOO_MANY_REQUESTS',
  503: 'SERVICE_UNAVAILABLE'
} as const
const CODE_BY_STATUS: Record<number, string | undefined> = BY_STATUS
// The codes the handler gives of its own, beside the domain errors' (services/errors.ts) and CODE_BY_STATUS.
const CODES = { validation: 'VALIDATION_FAILED', malformed: 'MALFORMED_JSON', internal: 'INTERNAL_ERROR', fallback: 'BAD_REQUEST' } as const
/** Every code this plugin can put in a problem; with the domain errors' codes, the whole set clients may see. */
export const HANDLER_PROBLEM_CODES: readonly string[] = [...new Set([...Object.values(BY_STATUS), ...Object.values(CODES)])]
const MALFORMED_BODY = new Set(['FST_ERR_CTP_INVALID_JSON_BODY', 'FST_ERR_CTP_EMPTY_JSON_BODY', 'FST_ERR_CTP_INVALID_CONTENT_LENGTH'])

function fieldErrors (issues: ValidationIssue[], location: string): FieldError[] {
  return issues.map((issue) => {
    const path = issue.instancePath.replace(/^\//, '').replaceAll('/', '.')
    const child = issue.params.missingProperty ?? issue.params.additionalProperty
    // An error about the whole body (say, an array where an object belongs) names the body itself.
    const field = [path, child].filter((p) => typeof p === 'string' && p !== '').join('.') || location
    const message = issue.keyword === 'additionalProperties' ? 'is not an accepted field' : issue.message
    return { in: location, field, message }
  })
}

/** Everything the client learns about an error; 5xx details stay in the log. */
function toProblem (error: FastifyError): Omit<ProblemBody, 'instance' | 'type' | 'title'> {
  if (error instanceof DomainError) {
    return { status: error.status, code: error.code, detail: error.status >= 500 ? 'The service failed to handle this request' : error.message }
  }
  if (error.validation !== undefined) {
    const errors = fieldErrors(error.validation as ValidationIssue[], String(error.validationContext))
    return { status: 400, code: CODES.validation, detail: 'The request has invalid fields', errors }
  }
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
  if (MALFORMED_BODY.has(error.code)) return { status: 400, code: CODES.malformed, detail: 'The body is not valid JSON' }
  if (status >= 500 && status !== 503) return { status, code: CODES.internal, detail: 'The service failed to handle this request' }
  return { status, code: CODE_BY_STATUS[status] ?? CODES.fallback, detail: error.message }
}

const slug = (code: string): string => code.toLowerCase().replaceAll('_', '-')

export function sendProblem (request: FastifyRequest, reply: FastifyReply, p: Omit<ProblemBody, 'instance' | 'type' | 'title'>): FastifyReply {
  const problem: ProblemBody = {
    type: `urn:gatehouse:problem:${slug(p.code)}`,
    title: String(STATUS_CODES[p.status]),
    instance: `urn:gatehouse:request:${request.id}`,
    ...p
  }
  // RFC 9110: a 401 must say how to authenticate; RFC 6750 names the scheme and realm.
  if (p.status === 401) reply.header('www-authenticate', 'Bearer realm="gatehouse"')
  if (p.status === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '5')
  return reply.code(p.status).type('application/problem+json').send(problem)
}

/**
 * Errors Node's HTTP parser raises before Fastify sees a request (a slow client past the request
 * timeout, oversized headers, garbage): answered on the raw socket, still as problem+json.
 */
export function clientErrorHandler (this: { log: { debug: (obj: object, msg: string) => void } }, err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, code] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? [408, BY_STATUS[408]]
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, BY_STATUS[431]] : [400, CODES.fallback]
  this.log.debug({ err: err.message, code: err.code }, 'client error')
  if (socket.writable) {
    const body = JSON.stringify({
      type: `urn:gatehouse:problem:${slug(code)}`,
      title: String(STATUS_CODES[status]),
      status,
      detail: status === 408 ? 'The request was not received in time' : 'The request could not be parsed',
      code,
      instance: 'urn:gatehouse:request:none'
    })
    socket.write(`HTTP/1.1 ${status} ${String(STATUS_CODES[status])}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/**
 * Errors the router raises before any route or hook runs (Fastify's frameworkErrors): a path that is
 * not validly percent-encoded (/api/users/%zz), or a path parameter longer than maxParamLength.
 * Fastify would answer those as plain JSON with its own codes; here they are problems like the rest,
 * with the headers every answer carries (no onRequest hook runs for them).
 */
export async function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  reply.headers(SECURITY_HEADERS).header('x-request-id', request.id)
  const detail = error.code === 'FST_ERR_BAD_URL' ? 'The URL is not validly percent-encoded' : 'A path parameter is longer than any valid value'
  return await sendProblem(request, reply, { status: 400, code: CODES.fallback, detail })
}

/** One error handler for the whole app: every failure leaves as application/problem+json (RFC 9457). */
export default fp(async function errors (app) {
  app.addSchema(Problem)

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const problem = toProblem(error)
    if (error instanceof TooManyRequestsError) reply.header('retry-after', String(error.retryAfterSeconds))
    if (problem.status === 503) {
      // A dependency down or load shed: worth a warning per request, not an error with a stack.
      request.log.warn({ code: problem.code, err: error.message }, 'request refused: unavailable')
    } else if (problem.status >= 500) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.info({ code: problem.code, status: problem.status }, 'request refused')
    }
    return await sendProblem(request, reply, problem)
  })

  app.setNotFoundHandler(async (request, reply) => {
    return await sendProblem(request, reply, { status: 404, code: BY_STATUS[404], detail: `No route for ${request.method} ${request.url.replace(/\?.*$/s, '')}` })
  })
}, { name: 'errors' })
