import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { InvalidCredentialsError } from '../../services/errors.js'
import { bearerAuth, Email, problems, UserRef } from '../schemas.js'

const LoginBody = Type.Object({
  email: Email,
  // Not the signup rules: a login must not reveal which rules an account's password follows.
  password: Type.String({ minLength: 1, maxLength: 128, writeOnly: true })
}, { additionalProperties: false })

const AccessToken = Type.Object({
  access_token: Type.String({ description: 'JWT (HS256) with sub, role, iat, exp, iss and aud' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until the access token expires' })
})

const auth: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/login', {
    schema: {
      operationId: 'login',
      tags: ['auth'],
      summary: 'Sign in with email and password',
      description: 'An unknown email and a wrong password give the same 401 INVALID_CREDENTIALS.',
      body: LoginBody,
      response: { 200: AccessToken, ...problems(401, 413, 415) }
    }
  }, async (request) => {
    let user
    try {
      user = await app.users.authenticate(request.body.email, request.body.password)
    } catch (err) {
      if (err instanceof InvalidCredentialsError) app.metrics.logins.inc({ outcome: 'failure' })
      throw err
    }
    app.metrics.logins.inc({ outcome: 'success' })
    return app.tokens.issueAccessToken(user)
  })

  await app.register(async function protectedAuth (scope) {
    const app = scope.withTypeProvider<TypeBoxTypeProvider>()
    app.addHook('onRequest', app.authenticate)

    app.get('/me', {
      schema: {
        operationId: 'getCurrentUser',
        tags: ['auth'],
        summary: 'The user the bearer token belongs to',
        security: bearerAuth,
        response: { 200: UserRef, ...problems(401) }
      }
    }, async (request) => await app.users.me(request.actor))
  })
}

export default auth
