import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { PublicJwk } from '../../services/signing-keys.js'
import { noAuth, problems } from '../schemas.js'

const Jwk = Type.Object({
  kty: Type.String(),
  crv: Type.String(),
  x: Type.String(),
  y: Type.Optional(Type.String()),
  kid: Type.String({ description: 'RFC 7638 thumbprint; matches the kid header of tokens signed with this key' }),
  use: Type.Literal('sig'),
  alg: Type.String()
})

const wellKnown: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/.well-known/jwks.json', {
    schema: {
      operationId: 'getJwks',
      tags: ['auth'],
      summary: 'Public keys that verify Gatehouse access tokens (JWKS)',
      description: 'Empty when tokens are signed with the shared HS256 secret. During a key rotation it lists the old keys too.',
      security: noAuth,
      // Typed as the keys the auth plugin loaded (node's JWK type), serialized through this schema.
      response: { 200: Type.Unsafe<{ keys: PublicJwk[] }>(Type.Object({ keys: Type.Array(Jwk) })), ...problems() }
    }
  }, async (_request, reply) => {
    // Verifiers cache this; a short max-age lets a rotation reach them within minutes.
    reply.header('cache-control', 'public, max-age=300')
    return app.jwks
  })
}

export default wellKnown
