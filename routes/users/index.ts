import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { bearerAuth, Email, IdParams, noAuth, Password, problems, Role, UserRef, Username } from '../schemas.js'

const SignupBody = Type.Object({ email: Email, username: Username, password: Password }, { additionalProperties: false })

const UserPatch = Type.Object({
  email: Type.Optional(Email),
  username: Type.Optional(Username),
  password: Type.Optional(Password),
  role: Type.Optional(Role),
  current_password: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 128,
    writeOnly: true,
    description: 'Required when changing your own email or password'
  }))
}, { additionalProperties: false, minProperties: 1 })

const DEFAULT_PAGE_SIZE = 20
const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'next_cursor from the previous page' })),
  // Looser than Email, so a malformed address of any length is INVALID_EMAIL, not sometimes VALIDATION_FAILED.
  email: Type.Optional(Type.String({
    maxLength: 512,
    description: 'Exact lookup by address (trimmed and lower-cased first): data holds that user or nothing, next_cursor is null, and limit and cursor are ignored'
  }))
}, { additionalProperties: false })

const UserPage = Type.Object({
  data: Type.Array(UserRef),
  next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as cursor for the next page; null on the last page' })
})

/** Public: signup. Everything else needs a bearer token. */
const users: FastifyPluginAsyncTypebox = async (app) => {
  app.post('', {
    schema: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Sign up: create a user account',
      description: 'Open signup; no token needed. A role cannot be chosen here: new accounts are users.',
      security: noAuth,
      body: SignupBody,
      response: {
        201: {
          description: 'Created; Location names the new user',
          headers: { location: { type: 'string', description: 'Path of the new user: /api/users/{id}' } },
          ...UserRef
        },
        ...problems(400, 409, 413, 415, 429)
      }
    }
  }, async (request, reply) => {
    await app.throttle.assertSignupAllowed(request.ip)
    const user = await app.users.create(request.body)
    return await reply.code(201).header('location', `/api/users/${user.id}`).send(user)
  })

  await app.register(async function protectedUsers (scope) {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>()
    app.addHook('onRequest', app.authenticate)

    app.get('', {
      schema: {
        operationId: 'listUsers',
        tags: ['users'],
        summary: 'List users, newest first (admin)',
        description: 'Keyset-paginated: pass next_cursor back as cursor until it is null. With email, an exact lookup of one address instead.',
        security: bearerAuth,
        querystring: ListQuery,
        response: { 200: UserPage, ...problems(400, 401, 403) }
      }
    }, async (request) => {
      const { limit = DEFAULT_PAGE_SIZE, cursor, email } = request.query
      return await app.users.list(request.actor, limit, cursor, email)
    })

    app.get('/:id', {
      schema: {
        operationId: 'getUser',
        tags: ['users'],
        summary: 'Get a user (yourself, or anyone as admin)',
        description: 'Another user\'s id is 403 for a non-admin, whether or not that user exists.',
        security: bearerAuth,
        params: IdParams,
        response: { 200: UserRef, ...problems(400, 401, 403, 404) }
      }
    }, async (request) => await app.users.get(request.actor, request.params.id))

    app.patch('/:id', {
      schema: {
        operationId: 'updateUser',
        tags: ['users'],
        summary: 'Change a user (yourself, or anyone as admin)',
        description: 'Changing your own email or password needs current_password. Only an admin may change role.',
        security: bearerAuth,
        params: IdParams,
        body: UserPatch,
        response: { 200: UserRef, ...problems(400, 401, 403, 404, 409, 413, 415) }
      }
    }, async (request) => await app.users.update(request.actor, request.params.id, request.body))

    app.delete('/:id', {
      schema: {
        operationId: 'deleteUser',
        tags: ['users'],
        summary: 'Delete a user (yourself, or anyone as admin)',
        description: 'Also ends every session of that user. Access tokens already issued stay valid until they expire.',
        security: bearerAuth,
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...problems(400, 401, 403, 404, 413, 415) }
      }
    }, async (request, reply) => {
      await app.users.delete(request.actor, request.params.id)
      return await reply.code(204).send(null)
    })
  })
}

export default users
