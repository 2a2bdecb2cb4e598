import fastifyJwt, { type TokenOrHeader } from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { UnauthorizedError } from '../services/errors.js'
import type { PublicJwk, SigningKeys } from '../services/signing-keys.js'
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
    /** The public keys other services verify our tokens with; empty with HS256. */
    jwks: { keys: PublicJwk[] }
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
// A few MiB at most: room for the tokens every caller of a replica is using at once.
const VERIFIED_TOKEN_CACHE_SIZE = 10_000

/** The key for a token, chosen by its kid among the keys we accept; any other kid is refused. */
function publicKeyByKid (keys: SigningKeys) {
  const pems = new Map([...keys.verification].map(([kid, key]) => [kid, key.export({ format: 'pem', type: 'spki' }).toString()]))
  return async (_request: FastifyRequest, token: TokenOrHeader): Promise<string> => {
    // Registered with decode.complete, so the token arrives with its header.
    const pem = pems.get(String((token as { header: { kid?: unknown } }).header.kid))
    if (pem === undefined) throw new Error('unknown kid')
    return pem
  }
}

export default fp<{ config: Config['jwt'] }>(async function auth (app, { config }) {
  const { keys } = config
  const algorithm = keys?.algorithm ?? 'HS256'
  const claims = { iss: config.issuer, aud: config.audience, expiresIn: `${config.accessTokenTtlSeconds}s` }
  await app.register(fastifyJwt, {
    secret: keys === undefined
      ? config.secret
      : { private: keys.signing.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), public: publicKeyByKid(keys) },
    // The verify key is looked up by the kid in the token's header, so decoding must keep the header.
    ...(keys !== undefined && { decode: { complete: true } }),
    sign: { algorithm, ...(keys !== undefined && { kid: keys.signing.kid }), ...claims },
    verify: {
      // Pinned: a token claiming any other algorithm ("none", or HS256 keyed with our public key) is refused.
      algorithms: [algorithm],
      allowedIss: config.issuer,
      allowedAud: config.audience,
      requiredClaims: ['sub', 'role', 'iat', 'exp', 'iss', 'aud'],
      clockTolerance: CLOCK_TOLERANCE_MS,
      // fast-jwt remembers each token's outcome (keyed by a hash of the whole token, kept no longer
      // than the token's exp): a client sends the same token for minutes, and verifying it again
      // cost 2.5x a lookup (HS256; far more with EdDSA/ES256 signatures).
      cache: VERIFIED_TOKEN_CACHE_SIZE
    }
  })
  app.decorate('jwks', keys?.jwks ?? { keys: [] })

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
