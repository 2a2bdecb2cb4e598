import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { UnauthorizedError } from '../services/errors.js'
import type { AccessClaims } from '../services/token-service.js'
import type { Actor } from '../services/user-service.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims
    user: AccessClaims & { iat: number, exp: number, iss: string, aud: string }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook for protected scopes: verifies the bearer token or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    /** Who is asking, from the verified token. Only set in scopes that run `authenticate`. */
    actor: Actor
  }
}

// A little leeway for clocks on other replicas; anything beyond is a token from the future.
const CLOCK_TOLERANCE_MS = 5_000

export default fp<{ config: Config['jwt'] }>(async function auth (app, { config }) {
  await app.register(fastifyJwt, {
    secret: config.secret,
    sign: {
      algorithm: 'HS256',
      iss: config.issuer,
      aud: config.audience,
      expiresIn: `${config.accessTokenTtlSeconds}s`
    },
    verify: {
      // Pinned: a token claiming any other algorithm (including "none") is refused.
      algorithms: ['HS256'],
      allowedIss: config.issuer,
      allowedAud: config.audience,
      requiredClaims: ['sub', 'role', 'iat', 'exp', 'iss', 'aud'],
      clockTolerance: CLOCK_TOLERANCE_MS
    }
  })

  app.decorateRequest('actor', null as unknown as Actor)
  app.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    if (request.headers.authorization === undefined) throw new UnauthorizedError()
    let claims: FastifyRequest['user']
    try {
      claims = await request.jwtVerify<FastifyRequest['user']>()
    } catch (err) {
      throw new UnauthorizedError('The bearer token is invalid or expired', { cause: err })
    }
    // fast-jwt checks exp and nbf but not iat: a token "issued" in the future was not issued by us.
    if (claims.iat * 1000 > Date.now() + CLOCK_TOLERANCE_MS) throw new UnauthorizedError('The bearer token is invalid or expired')
    request.actor = { id: claims.sub, role: claims.role }
  })
}, { name: 'auth' })
