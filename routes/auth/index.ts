import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { InvalidCredentialsError } from '../../services/errors.js'
import type { SessionSummary } from '../../services/ports.js'
import type { ClientInfo } from '../../services/session-service.js'
import { bearerAuth, Email, noAuth, PLAIN_UUID, problems, UserRef } from '../schemas.js'

const LoginBody = Type.Object({
  email: Email,
  // Not the signup rules: a login must not reveal which rules an account's password follows.
  password: Type.String({ minLength: 1, maxLength: 128, writeOnly: true })
}, { additionalProperties: false })

// Our refresh tokens are 43 characters; the bound only keeps junk from being hashed at length.
const RefreshToken = Type.String({ minLength: 1, maxLength: 256, writeOnly: true, description: 'The refresh_token from login or the last refresh' })
const RefreshBody = Type.Object({ refresh_token: RefreshToken }, { additionalProperties: false })

const SessionTokens = Type.Object({
  access_token: Type.String({ description: 'JWT with sub, role, iat, exp, iss and aud' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' }),
  refresh_token: Type.String({ description: 'Opaque; exchange it at /api/auth/refresh. Each one works once.' }),
  refresh_expires_in: Type.Integer({ description: 'Seconds until the refresh token expires' })
})

// Typed as the service's summary (Dates), serialized as ISO 8601 by the schema.
const Session = Type.Unsafe<SessionSummary>(Type.Object({
  id: Type.String({ format: 'uuid' }),
  created_at: Type.String({ format: 'date-time', description: 'When the sign-in happened' }),
  last_used_at: Type.String({ format: 'date-time', description: 'The last refresh' }),
  expires_at: Type.String({ format: 'date-time' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()])
}, { additionalProperties: false }))

const clientOf = (request: FastifyRequest): ClientInfo => ({ userAgent: request.headers['user-agent'], ip: request.ip })

const auth: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/login', {
    schema: {
      operationId: 'login',
      tags: ['auth'],
      summary: 'Sign in with email and password',
      description: 'An unknown email and a wrong password give the same 401 INVALID_CREDENTIALS. ' +
        'Repeated failures per account or per client IP are refused with 429 and Retry-After.',
      security: noAuth,
      body: LoginBody,
      response: { 200: SessionTokens, ...problems(400, 401, 413, 415, 429) }
    }
  }, async (request) => {
    const { email, password } = request.body
    await app.throttle.assertLoginAllowed(email, request.ip)
    let user
    try {
      user = await app.users.authenticate(email, password)
    } catch (err) {
      if (err instanceof InvalidCredentialsError) {
        app.metrics.logins.inc({ outcome: 'failure' })
        await app.throttle.recordLoginFailure(email, request.ip)
      }
      throw err
    }
    app.metrics.logins.inc({ outcome: 'success' })
    await app.throttle.recordLoginSuccess(email)
    return await app.sessions.start(user, clientOf(request))
  })

  app.post('/refresh', {
    schema: {
      operationId: 'refreshSession',
      tags: ['auth'],
      summary: 'Exchange a refresh token for new access and refresh tokens',
      description: 'The refresh token is rotated: the one sent stops working. Sending an already used one again ' +
        '(after a short grace window for parallel refreshes) revokes the whole session.',
      security: noAuth,
      body: RefreshBody,
      response: { 200: SessionTokens, ...problems(400, 401, 413, 415) }
    }
  }, async (request) => await app.sessions.refresh(request.body.refresh_token, clientOf(request)))

  app.post('/logout', {
    schema: {
      operationId: 'logout',
      tags: ['auth'],
      summary: 'End the session this refresh token belongs to',
      description: 'Idempotent: an unknown or already revoked token also gives 204. Access tokens already issued stay valid until they expire.',
      security: noAuth,
      body: RefreshBody,
      response: { 204: Type.Null({ description: 'Signed out' }), ...problems(400, 413, 415) }
    }
  }, async (request, reply) => {
    await app.sessions.logout(request.body.refresh_token)
    return await reply.code(204).send(null)
  })

  await app.register(async function protectedAuth (scope) {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>()
    app.addHook('onRequest', app.authenticate)

    app.get('/me', {
      schema: {
        operationId: 'getCurrentUser',
        tags: ['auth'],
        summary: 'The user the bearer token belongs to',
        description: 'Read from the database, so a deleted user gets 401 here even with a token that has not expired.',
        security: bearerAuth,
        response: { 200: UserRef, ...problems(401) }
      }
    }, async (request) => await app.users.me(request.actor))

    app.post('/logout-all', {
      schema: {
        operationId: 'logoutAll',
        tags: ['auth'],
        summary: 'End every session of the current user',
        description: 'Every refresh token of the user stops working, this one\'s included. Access tokens stay valid until they expire.',
        security: bearerAuth,
        response: { 204: Type.Null({ description: 'Every session ended' }), ...problems(400, 401, 413, 415) }
      }
    }, async (request, reply) => {
      await app.sessions.logoutAll(request.actor.id)
      return await reply.code(204).send(null)
    })

    app.get('/sessions', {
      schema: {
        operationId: 'listSessions',
        tags: ['auth'],
        summary: 'The current user\'s active sessions, most recently used first',
        description: 'One entry per sign-in that has not ended or expired, with the client it came from.',
        security: bearerAuth,
        response: { 200: Type.Object({ data: Type.Array(Session) }), ...problems(401) }
      }
    }, async (request) => ({ data: await app.sessions.list(request.actor.id) }))

    app.delete('/sessions/:id', {
      schema: {
        operationId: 'revokeSession',
        tags: ['auth'],
        summary: 'End one of the current user\'s sessions',
        description: 'A session that is not yours, or has already ended, is 404. Access tokens from it stay valid until they expire.',
        security: bearerAuth,
        // A plain UUID: 'urn:uuid:…' passes format uuid but not PostgreSQL's uuid type (it was a 500).
        params: Type.Object({ id: Type.String({ format: 'uuid', pattern: PLAIN_UUID, description: 'Session id, as listed by GET /api/auth/sessions' }) }),
        response: { 204: Type.Null({ description: 'Session ended' }), ...problems(400, 401, 404, 413, 415) }
      }
    }, async (request, reply) => {
      await app.sessions.revoke(request.actor.id, request.params.id)
      return await reply.code(204).send(null)
    })
  })
}

export default auth
